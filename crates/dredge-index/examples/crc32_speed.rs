//! How fast the CRC-32 of index files runs (BENCHMARKS.md "Verifying indexes"): the
//! bytes in memory, read through a 1 MiB buffer, and through a memory map (what
//! dredge does), three passes each.
//!
//! ```text
//! cargo run --release -p dredge-index --example crc32_speed -- FILE
//! ```

use std::io::Read;
use std::time::Instant;

fn main() -> std::io::Result<()> {
    let Some(path) = std::env::args().nth(1) else {
        eprintln!("usage: crc32_speed FILE");
        std::process::exit(2);
    };
    let data = fs_err::read(&path)?;
    let mb = data.len() as f64 / 1e6;
    for _ in 0..3 {
        let t = Instant::now();
        let crc = crc32fast::hash(&data);
        let memory = mb / t.elapsed().as_secs_f64();

        let t = Instant::now();
        let mut file = fs_err::File::open(&path)?;
        let mut hasher = crc32fast::Hasher::new();
        let mut buf = vec![0u8; 1 << 20];
        loop {
            let n = file.read(&mut buf)?;
            if n == 0 {
                break;
            }
            hasher.update(&buf[..n]);
        }
        assert_eq!(hasher.finalize(), crc);
        let buffered = mb / t.elapsed().as_secs_f64();

        let t = Instant::now();
        let (bytes, mapped) = dredge_index::crc32_of(path.as_ref())?;
        assert_eq!((bytes as usize, mapped), (data.len(), crc));
        let map = mb / t.elapsed().as_secs_f64();
        println!(
            "{crc:08x} {mb:.1} MB: in memory {memory:.0} MB/s, read 1 MiB {buffered:.0} MB/s, mmap {map:.0} MB/s"
        );
    }
    Ok(())
}
