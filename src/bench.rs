//! `bazaar bench`: measurements that run against real processes on this machine.
//!
//! `bazaar bench gateway` puts the same closed-loop HTTP/1.1 load on a tiny upstream directly,
//! through the gateway (a public route, then a route with JWT verification and rate limiting)
//! and through nginx, then measures each unloaded, and prints the figures next to each other.
//! `bazaar bench startup` times a cold `bazaar up` and reads each process's memory once it is
//! warm and idle. `bazaar bench orders` loads a whole `bazaar up` with order placements
//! (feeds + SQLite, optionally NATS + PostgreSQL) against a product-read baseline.
//! `bazaar bench capacity` finds the highest open-model arrival rate a fresh `bazaar up`
//! sustains within an SLO, and the whole system's resident memory at that rate.
//! `bazaar bench resilience` times the client resilience stack against a bare service.
//! Every figure is printed as measured; the goal lines only compare.
//!
//! Every process the bench starts is stopped and every temporary directory removed when the
//! bench ends, fails or is interrupted: each lives in a guard that cleans up on drop, and an
//! interrupt drops the whole bench future.

mod capacity;
mod cpu;
mod gateway;
mod loadgen;
mod nginx;
mod orders;
pub(crate) mod process;
mod progress;
mod report;
mod resilience;
mod startup;
mod upstream;

use std::{future::Future, pin::Pin};

use clap::{Args, Subcommand};

/// `bazaar bench <what>`.
#[derive(Debug, Clone, Args)]
pub struct BenchArgs {
    #[command(subcommand)]
    pub what: BenchWhat,
}

/// What to measure.
#[derive(Debug, Clone, Subcommand)]
pub enum BenchWhat {
    /// Gateway throughput and latency against a direct upstream and nginx.
    Gateway(gateway::GatewayArgs),
    /// Cold start time of `bazaar up` and idle memory per service.
    Startup(startup::StartupArgs),
    /// Confirmed orders per second of the whole shop, against a product-read baseline.
    Orders(orders::OrdersArgs),
    /// The highest arrival rate a fresh `bazaar up` sustains within an SLO, and its memory.
    Capacity(capacity::CapacityArgs),
    /// Per-call cost of the resilience stack (timeout, retry, breaker, bulkhead).
    Resilience(resilience::ResilienceArgs),
    /// The upstream the gateway bench proxies to (started by `bazaar bench gateway`).
    #[command(hide = true)]
    Upstream(upstream::UpstreamArgs),
}

pub async fn run(args: BenchArgs) -> anyhow::Result<()> {
    let bench: Pin<Box<dyn Future<Output = anyhow::Result<()>>>> = match args.what {
        // The upstream stops quietly on a signal: that is how the bench ends it.
        BenchWhat::Upstream(a) => return upstream::run(a).await,
        // No children and nothing to clean up; its measurement thread cannot be interrupted.
        BenchWhat::Resilience(a) => return resilience::run(a).await,
        BenchWhat::Gateway(a) => Box::pin(gateway::run(a)),
        BenchWhat::Startup(a) => Box::pin(startup::run(a)),
        BenchWhat::Orders(a) => Box::pin(orders::run(a)),
        BenchWhat::Capacity(a) => Box::pin(capacity::run(a)),
    };
    // Dropping the bench future drops the guards of every child and temporary directory.
    tokio::select! {
        result = bench => result,
        () = bazaar_runtime::shutdown::signal() => {
            reap_children(CHILD_EXIT_WAIT).await;
            // Databases and streams an interrupted `bench orders` made on shared servers.
            orders::clean_up_interrupted().await;
            anyhow::bail!("interrupted: stopped the processes the bench started and removed its temporary files")
        }
    }
}

/// How long an interrupted bench waits for its children to finish stopping.
const CHILD_EXIT_WAIT: std::time::Duration = std::time::Duration::from_secs(15);

/// Waits (bounded) until every child has exited, reaping each one: the guards only signal,
/// and `bazaar up` in particular needs a moment to stop its own children.
async fn reap_children(limit: std::time::Duration) {
    use nix::{
        errno::Errno,
        sys::wait::{waitpid, WaitPidFlag, WaitStatus},
        unistd::Pid,
    };
    let deadline = tokio::time::Instant::now() + limit;
    while tokio::time::Instant::now() < deadline {
        match waitpid(Pid::from_raw(-1), Some(WaitPidFlag::WNOHANG)) {
            Ok(WaitStatus::StillAlive) => {
                tokio::time::sleep(std::time::Duration::from_millis(20)).await
            }
            Ok(_) => {}
            Err(Errno::EINTR) => {}
            // ECHILD: no children left.
            Err(_) => return,
        }
    }
}
