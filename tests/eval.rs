//! `dredge eval` end to end, and the cross-check against pytrec_eval.
