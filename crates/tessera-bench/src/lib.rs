//! `tessera-bench`: the benchmark command of docs/PERFORMANCE.md. It starts the release
//! `tessera serve` on a fresh store and a trivial handler on the same HTTP stack (the
//! ceiling), drives each scenario with an in-process hyper load generator, and reports each
//! scenario's throughput as a ratio to the ceiling measured in the same run.

pub mod attack;
pub mod ceiling;
pub mod cli;
pub mod http;
pub mod load;
pub mod procstat;
pub mod reliability;
pub mod report;
pub mod run;
pub mod scale;
pub mod scenarios;
pub mod server;
