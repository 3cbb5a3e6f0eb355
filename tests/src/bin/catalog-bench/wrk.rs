//! wrk, the HTTP load generator (Debian's package `wrk`), driving the `get` and `get-304`
//! scenarios and the bare handler they are compared with. The tool's own generator (reqwest
//! on tokio, in this process) saturates before a small server does: on the 2-core machine it
//! reached 41k requests/s from a bare axum handler where wrk reached 104k/s, so it hides
//! the server's own cost. wrk's C event loop costs a fraction of that per request.

use std::process::Stdio;
use std::time::Duration;

use tokio::process::Command;

/// What one wrk run counted.
#[derive(Debug, Clone, Copy)]
pub struct Figures {
    /// Requests/s over the run, as wrk prints it.
    pub rate: f64,
    /// Responses with a status other than 2xx or 3xx.
    pub non_2xx_3xx: u64,
    /// Connect, read, write and timeout errors, summed.
    pub socket_errors: u64,
    /// CPU time (user and system) the answering process spent per request, in µs, when
    /// its pid was given: on a machine shared with other work this moves much less than a
    /// rate does, because it does not count the time the process waited for a core.
    pub cpu_us: Option<f64>,
}

/// How to get wrk, printed when it is missing.
pub const INSTALL: &str = "wrk is not installed (Debian/Ubuntu: apt-get install wrk; \
                           https://github.com/wg/wrk)";

/// Loads `url` with `connections` keep-alive connections on up to two threads (one per
/// core of the development machine: wrk shares the cores with the server), each request
/// carrying `headers`: a `warmup` run that is thrown away, then the measured one.
/// `None` when wrk is missing or its output has no rate. With `pid`, the CPU time that
/// process spent in the measured run is divided among the requests.
pub async fn run(
    url: &str,
    headers: &[(&str, &str)],
    connections: usize,
    warmup: Duration,
    duration: Duration,
    pid: Option<u32>,
) -> Option<Figures> {
    if !warmup.is_zero() {
        once(url, headers, connections, warmup).await?;
    }
    let cpu_before = pid.and_then(cpu_time);
    let started = std::time::Instant::now();
    let mut figures = once(url, headers, connections, duration).await?;
    let elapsed = started.elapsed().as_secs_f64();
    if let (Some(before), Some(after)) = (cpu_before, pid.and_then(cpu_time)) {
        let requests = figures.rate * elapsed;
        if requests > 0.0 {
            figures.cpu_us = Some((after - before).as_secs_f64() * 1e6 / requests);
        }
    }
    Some(figures)
}

/// User and system CPU time of process `pid` so far (/proc/<pid>/stat, in 1/100 s).
fn cpu_time(pid: u32) -> Option<Duration> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // After the command name (in parentheses, may hold spaces) come the state, then
    // fields 4 and on; utime and stime are fields 14 and 15.
    let rest = stat.get(stat.rfind(')')? + 1..)?;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| fields.get(i)?.parse::<u64>().ok();
    Some(Duration::from_millis((ticks(11)? + ticks(12)?) * 10))
}

async fn once(
    url: &str,
    headers: &[(&str, &str)],
    connections: usize,
    duration: Duration,
) -> Option<Figures> {
    let threads = connections.clamp(1, 2);
    let mut command = Command::new("wrk");
    command
        .arg(format!("-t{threads}"))
        .arg(format!("-c{connections}"))
        .arg(format!("-d{}s", duration.as_secs().max(1)));
    for (name, value) in headers {
        command.arg("-H").arg(format!("{name}: {value}"));
    }
    let output = command
        .arg(url)
        .stdin(Stdio::null())
        .kill_on_drop(true)
        .output()
        .await
        .ok()?;
    parse(&String::from_utf8_lossy(&output.stdout))
}

/// Reads wrk's summary:
///
/// ```text
///   128223 requests in 5.04s, 61.02MB read
///   Non-2xx or 3xx responses: 5
///   Socket errors: connect 0, read 0, write 0, timeout 0
/// Requests/sec:  25437.04
/// ```
fn parse(out: &str) -> Option<Figures> {
    let mut figures = Figures {
        rate: f64::NAN,
        non_2xx_3xx: 0,
        socket_errors: 0,
        cpu_us: None,
    };
    for line in out.lines().map(str::trim) {
        if let Some(rate) = line.strip_prefix("Requests/sec:") {
            figures.rate = rate.trim().parse().ok()?;
        } else if let Some(n) = line.strip_prefix("Non-2xx or 3xx responses:") {
            figures.non_2xx_3xx = n.trim().parse().unwrap_or(0);
        } else if let Some(errors) = line.strip_prefix("Socket errors:") {
            figures.socket_errors = errors
                .split(',')
                .filter_map(|e| e.split_whitespace().last()?.parse::<u64>().ok())
                .sum();
        }
    }
    figures.rate.is_finite().then_some(figures)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_wrks_summary() {
        let out = "Running 5s test @ http://127.0.0.1:18080/products/1
  2 threads and 8 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency   790.31us    2.03ms  26.18ms   93.56%
    Req/Sec    12.88k     5.26k   24.76k    76.00%
  128223 requests in 5.04s, 61.02MB read
  Non-2xx or 3xx responses: 5
  Socket errors: connect 0, read 2, write 0, timeout 1
Requests/sec:  25437.04
Transfer/sec:     12.11MB
";
        let f = parse(out).expect("a rate");
        assert_eq!(f.rate, 25437.04);
        assert_eq!(f.non_2xx_3xx, 5);
        assert_eq!(f.socket_errors, 3);
        assert!(parse("wrk: invalid URL").is_none());
    }
}
