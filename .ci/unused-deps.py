#!/usr/bin/env python3
"""Fails when a manifest names a dependency nothing uses.

A member's dependency is used when its crate name (dashes as underscores) appears in
a Rust file of that member (src/, tests/, benches/, examples/, build.rs); a workspace
dependency is used when some member (or the root package) names it. The same rule as
cargo-machete's, without installing it in CI.
"""

import pathlib
import re
import sys
import tomllib

ROOT = pathlib.Path(__file__).resolve().parent.parent
SECTIONS = ("dependencies", "dev-dependencies", "build-dependencies")


def rust_text(package_dir, nested_members=()):
    text = []
    for path in package_dir.rglob("*.rs"):
        rel = path.relative_to(package_dir).parts
        if rel[0] in ("target", "crates") or any(
            path.is_relative_to(m) for m in nested_members
        ):
            continue
        text.append(path.read_text(errors="replace"))
    return "\n".join(text)


def main():
    root = tomllib.loads((ROOT / "Cargo.toml").read_text())
    members = sorted(p.parent for p in ROOT.glob("crates/*/Cargo.toml"))
    packages = [(ROOT, root)] + [
        (m, tomllib.loads((m / "Cargo.toml").read_text())) for m in members
    ]
    problems = []
    named = set()
    for directory, manifest in packages:
        text = rust_text(directory, members if directory == ROOT else ())
        for section in SECTIONS:
            for name, spec in manifest.get(section, {}).items():
                named.add(name)
                crate = (spec.get("package", name) if isinstance(spec, dict) else name)
                ident = crate.replace("-", "_")
                # Internal crates and optional dependencies behind features count
                # as used when the code names them.
                if not re.search(rf"\b{re.escape(ident)}\b", text):
                    where = directory.relative_to(ROOT) / "Cargo.toml"
                    problems.append(f"{where}: [{section}] {name} is never used")
    for name in root.get("workspace", {}).get("dependencies", {}):
        if name not in named:
            problems.append(f"Cargo.toml: [workspace.dependencies] {name} is used by no member")
    for problem in problems:
        print(problem)
    if problems:
        sys.exit(1)
    print(f"no unused dependencies in {len(packages)} manifests")


if __name__ == "__main__":
    main()
