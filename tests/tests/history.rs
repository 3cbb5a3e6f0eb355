//! A history check, the way Jepsen checks databases: clients of one user read and
//! compare-and-set a few products through a fault-injecting proxy (replies dropped after
//! the server acted, replies delayed past the client's timeout), with keyed retries, while
//! the server is killed with SIGKILL and restarted once mid-run. Every invocation and every
//! return is recorded in real-time order, and the history of each product is checked by
//! stateright's `LinearizabilityTester` against a sequential spec of a versioned register
//! with compare-and-set. On PostgreSQL (`CATALOG_TEST_DB=postgres`) two server instances
//! share the database, each behind its own proxy, and one of them is the one killed.
//!
//! A write whose every attempt went unanswered stays in flight in the history (it may or
//! may not have taken effect; the checker tries both), and its client goes on as a new
//! thread, as Jepsen's do.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use catalog_tests::Server;
use catalog_tests::proxy::{Fault, Proxy};
use stateright::semantics::{ConsistencyTester, LinearizabilityTester, SequentialSpec};

const PRODUCTS: i64 = 4;
const WORKERS: usize = 6;
const OPS_PER_WORKER: usize = 40;
/// How long a request may take before the client gives up on it and sends it again.
const TIMEOUT: Duration = Duration::from_millis(1500);
/// Attempts of one request before it is left in flight.
const ATTEMPTS: usize = 40;

/// A versioned register with compare-and-set: one product's (version, price).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
struct Register {
    version: i64,
    value: i64,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
enum Op {
    /// GET
    Read,
    /// PUT with If-Match naming `expect`, setting the price to `value`.
    Cas { expect: i64, value: i64 },
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
enum Ret {
    Read {
        version: i64,
        value: i64,
    },
    /// 200: the version the write made.
    CasOk {
        version: i64,
    },
    /// 412: the state the write met.
    CasFailed {
        version: i64,
        value: i64,
    },
}

impl SequentialSpec for Register {
    type Op = Op;
    type Ret = Ret;

    fn invoke(&mut self, op: &Op) -> Ret {
        match *op {
            Op::Read => Ret::Read {
                version: self.version,
                value: self.value,
            },
            Op::Cas { expect, value } if expect == self.version => {
                self.version += 1;
                self.value = value;
                Ret::CasOk {
                    version: self.version,
                }
            }
            Op::Cas { .. } => Ret::CasFailed {
                version: self.version,
                value: self.value,
            },
        }
    }
}

/// One entry of the history, in the order it happened.
#[derive(Debug, Clone)]
enum Event {
    Invoke {
        thread: usize,
        product: i64,
        op: Op,
    },
    Return {
        thread: usize,
        product: i64,
        ret: Ret,
    },
}

#[derive(Default)]
struct Record {
    events: Vec<Event>,
    /// Answers the server marked `Idempotent-Replayed` (the keyed retry found its write).
    replayed: usize,
    /// Requests sent again after no answer.
    resent: usize,
    /// Operations left in flight (never answered).
    unanswered: usize,
}

type History = Arc<Mutex<Record>>;

fn log(history: &History, event: Event) {
    history.lock().expect("the history").events.push(event);
}

/// One request, sent again (with the same key, for a write) until something answers it.
/// `None` when nothing did.
async fn until_answered(
    history: &History,
    request: impl Fn() -> reqwest::RequestBuilder,
) -> Option<(u16, serde_json::Value)> {
    for attempt in 0..ATTEMPTS {
        if attempt > 0 {
            history.lock().expect("the history").resent += 1;
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let Ok(response) = request().timeout(TIMEOUT).send().await else {
            continue;
        };
        let status = response.status().as_u16();
        let replayed = response.headers().contains_key("idempotent-replayed");
        let Ok(body) = response.json::<serde_json::Value>().await else {
            continue;
        };
        match status {
            // The key's first request is still being served, or the server is busy.
            409 if body["type"] == "/problems/idempotency-key-in-flight" => continue,
            503 => continue,
            _ => {}
        }
        if replayed {
            history.lock().expect("the history").replayed += 1;
        }
        return Some((status, body));
    }
    None
}

fn state_of(body: &serde_json::Value) -> (i64, i64) {
    (
        body["version"].as_i64().expect("a version"),
        body["price_cents"].as_i64().expect("a price"),
    )
}

async fn worker(n: usize, bases: Vec<String>, history: History) {
    let http = reqwest::Client::builder()
        .no_proxy()
        .build()
        .expect("an HTTP client");
    // A thread of the history; a new one after an operation left in flight.
    let mut thread = n * 1000;
    let mut ops = 0;
    while ops < OPS_PER_WORKER {
        let product = fastrand::i64(1..=PRODUCTS);
        let base = &bases[fastrand::usize(..bases.len())];
        let url = format!("{base}/products/{product}");
        log(
            &history,
            Event::Invoke {
                thread,
                product,
                op: Op::Read,
            },
        );
        ops += 1;
        let read = until_answered(&history, || http.get(&url).header("X-User", "alice")).await;
        let Some((200, current)) = read else {
            history.lock().expect("the history").unanswered += 1;
            thread += 1;
            continue;
        };
        let (version, value) = state_of(&current);
        log(
            &history,
            Event::Return {
                thread,
                product,
                ret: Ret::Read { version, value },
            },
        );
        if fastrand::u8(..10) < 3 {
            continue;
        }
        // Read-modify-write: one more than what was read, If-Match what was read. Two
        // workers that read the same version send the same fields: only If-Match and the
        // key tell the two writes apart.
        let etag = current["etag"].as_str().expect("an etag").to_string();
        let mut body = current.clone();
        body["price_cents"] = serde_json::json!(value + 1);
        let key = format!("{n}-{ops}-{}", fastrand::u64(..));
        let op = Op::Cas {
            expect: version,
            value: value + 1,
        };
        log(
            &history,
            Event::Invoke {
                thread,
                product,
                op,
            },
        );
        ops += 1;
        let written = until_answered(&history, || {
            http.put(&url)
                .header("X-User", "alice")
                .header("If-Match", &etag)
                .header("Idempotency-Key", format!("\"{key}\""))
                .json(&body)
        })
        .await;
        let ret = match written {
            Some((200, made)) => Ret::CasOk {
                version: state_of(&made).0,
            },
            Some((412, problem)) => {
                let (version, value) = state_of(&problem["current"]);
                Ret::CasFailed { version, value }
            }
            Some((status, body)) => panic!("PUT {url} answered {status}: {body}"),
            None => {
                history.lock().expect("the history").unanswered += 1;
                thread += 1;
                continue;
            }
        };
        log(
            &history,
            Event::Return {
                thread,
                product,
                ret,
            },
        );
    }
}

/// Sets a fault about every fifth request: a reply dropped after the server acted, or
/// delayed past the client's timeout (so the client sends again while the first is
/// answered). Counted in requests, not time, so a client retrying alone is not faulted at
/// every attempt.
async fn faults(proxies: Vec<Arc<Proxy>>, stop: Arc<std::sync::atomic::AtomicBool>) {
    let mut armed_at = vec![0; proxies.len()];
    while !stop.load(std::sync::atomic::Ordering::SeqCst) {
        for (proxy, armed_at) in proxies.iter().zip(armed_at.iter_mut()) {
            let seen = proxy.requests_seen();
            // A fault set stays until a request used it.
            if seen < *armed_at + 5 || !matches!(proxy.fault(), Fault::None | Fault::Times(0, _)) {
                continue;
            }
            *armed_at = seen;
            let put = |f| Fault::times(1, Fault::only("PUT", "/products", f));
            proxy.set(match fastrand::u8(..5) {
                0..=2 => put(Fault::DropReply),
                3 => put(Fault::DelayReply(TIMEOUT + Duration::from_millis(300))),
                _ => Fault::times(1, Fault::DropReply),
            });
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_history_of_keyed_conditional_writes_under_faults_is_linearizable() {
    let first = Server::start();
    let mut servers = vec![first];
    if catalog_tests::on_postgres() {
        let db = servers[0].db.clone();
        servers.push(Server::start_on(&db, &[], "127.0.0.1:0").expect("a second instance"));
    }
    let mut proxies = Vec::new();
    for s in &servers {
        proxies.push(Arc::new(Proxy::start(s.addr).await.expect("a proxy")));
    }
    let bases: Vec<String> = proxies.iter().map(|p| p.url("")).collect();

    // The registers' initial states, read before anything runs.
    let http = catalog_tests::client();
    let mut initial = Vec::new();
    for id in 1..=PRODUCTS {
        let r = catalog_tests::send(http.get(servers[0].url(&format!("/products/{id}")))).await;
        let (version, value) = state_of(&r.json());
        initial.push(Register { version, value });
    }

    let history: History = Arc::default();
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let fault_task = tokio::spawn(faults(proxies.clone(), stop.clone()));
    let started = Instant::now();
    let workers: Vec<_> = (0..WORKERS)
        .map(|n| tokio::spawn(worker(n, bases.clone(), history.clone())))
        .collect();

    // Mid-run: SIGKILL one server and start it again on the same database and address.
    let wait = Instant::now() + Duration::from_secs(30);
    while history.lock().expect("the history").events.len() < WORKERS * OPS_PER_WORKER / 2 {
        assert!(Instant::now() < wait, "the workers made no progress");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let mut victim = servers.pop().expect("a server");
    let victim = tokio::task::spawn_blocking(move || {
        victim.restart().expect("the server restarts");
        victim
    })
    .await
    .expect("the restart");
    for w in workers {
        w.await.expect("a worker");
    }
    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    fault_task.await.expect("the fault task");
    drop(victim);

    let record = history.lock().expect("the history");
    let writes = record
        .events
        .iter()
        .filter(|e| {
            matches!(
                e,
                Event::Return {
                    ret: Ret::CasOk { .. },
                    ..
                }
            )
        })
        .count();
    println!(
        "{} events in {:?}: {writes} writes acknowledged, {} requests sent again, {} answers replayed by key, {} operations left in flight",
        record.events.len(),
        started.elapsed(),
        record.resent,
        record.replayed,
        record.unanswered
    );
    // The faults did happen: the check is not of a quiet run.
    assert!(record.resent > 0, "no request was ever sent again");
    assert!(record.replayed > 0, "no keyed retry ever found its write");
    assert!(writes > 0);

    let checking = Instant::now();
    for (i, init) in initial.into_iter().enumerate() {
        let product = i as i64 + 1;
        let mut tester: LinearizabilityTester<usize, Register> = LinearizabilityTester::new(init);
        for event in &record.events {
            match event {
                Event::Invoke {
                    thread,
                    product: p,
                    op,
                } if *p == product => {
                    tester
                        .on_invoke(*thread, op.clone())
                        .expect("a well-formed history");
                }
                Event::Return {
                    thread,
                    product: p,
                    ret,
                } if *p == product => {
                    tester
                        .on_return(*thread, ret.clone())
                        .expect("a well-formed history");
                }
                _ => {}
            }
        }
        assert!(
            tester.is_consistent(),
            "the history of product {product} is not linearizable:\n{:#?}",
            record
                .events
                .iter()
                .filter(|e| matches!(e, Event::Invoke { product: p, .. } | Event::Return { product: p, .. } if *p == product))
                .collect::<Vec<_>>()
        );
    }
    println!("checked in {:?}", checking.elapsed());
}
