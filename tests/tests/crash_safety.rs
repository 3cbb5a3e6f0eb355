//! Crash safety: concurrent conditional writers, creates and deletes against the real
//! server, `kill -9` at 20 random moments, a restart on the same database each time, and
//! then: every acknowledged (2xx) write is there, every product's history is contiguous,
//! each ETag names exactly one version, and the change log replays in order. The server
//! must say it commits with synchronous=FULL: a NORMAL writer (which may lose the last
//! commits on power loss, which kill -9 cannot show) fails the check.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use catalog_shared::event::{ChangeEvent, EventId, Op};
use catalog_tests::{Server, health, product_json, send};
use eventsource_stream::Eventsource;
use futures_util::StreamExt;

/// A write the server acknowledged with 2xx.
#[derive(Debug, Clone)]
enum Acked {
    Version {
        id: i64,
        version: i64,
        etag: String,
        name: String,
    },
    Deleted {
        id: i64,
    },
}

/// A random number below `n` (std's randomly seeded hasher: no extra dependency).
fn random_below(n: u64) -> u64 {
    use std::hash::{BuildHasher, Hasher};
    std::collections::hash_map::RandomState::new()
        .build_hasher()
        .finish()
        % n
}

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap()
}

/// One writer: creates, conditional updates (GET, then PUT or PATCH with If-Match) and
/// conditional deletes, recording what was acknowledged, until the server dies.
async fn writer(base: String, worker: usize, acked: Arc<Mutex<Vec<Acked>>>, round: usize) {
    let c = client();
    let record = |a: Acked| acked.lock().unwrap().push(a);
    for step in 0.. {
        let choice = random_below(10);
        if choice < 3 {
            let sku = format!("R{round}-W{worker}-{step}");
            let Ok(r) = c
                .post(format!("{base}/products"))
                .json(&product_json(&sku, "created", step as i64, "in_stock"))
                .send()
                .await
            else {
                return;
            };
            if r.status() == 201 {
                let etag = r.headers()["etag"].to_str().unwrap().to_string();
                let Ok(p) = r.json::<serde_json::Value>().await else {
                    return;
                };
                record(Acked::Version {
                    id: p["id"].as_i64().unwrap(),
                    version: 1,
                    etag,
                    name: "created".into(),
                });
            }
            continue;
        }
        // Work on a few shared products, so that writers collide.
        let id = 1 + random_below(6);
        let Ok(r) = c.get(format!("{base}/products/{id}")).send().await else {
            return;
        };
        if r.status() != 200 {
            continue;
        }
        let etag = r.headers()["etag"].to_str().unwrap().to_string();
        let Ok(p) = r.json::<serde_json::Value>().await else {
            return;
        };
        if choice == 9 && step % 4 == 0 {
            let Ok(d) = c
                .delete(format!("{base}/products/{id}"))
                .header("If-Match", &etag)
                .send()
                .await
            else {
                return;
            };
            if d.status() == 204 {
                record(Acked::Deleted { id: id as i64 });
            }
            continue;
        }
        let name = format!("w{worker}-s{step}");
        let sent = if choice.is_multiple_of(2) {
            let mut body = p.clone();
            body["name"] = name.clone().into();
            c.put(format!("{base}/products/{id}"))
                .header("If-Match", &etag)
                .json(&body)
                .send()
                .await
        } else {
            c.patch(format!("{base}/products/{id}"))
                .header("If-Match", &etag)
                .header("Content-Type", "application/merge-patch+json")
                .body(serde_json::json!({ "name": name }).to_string())
                .send()
                .await
        };
        let Ok(w) = sent else { return };
        if w.status() == 200 {
            let etag = w.headers()["etag"].to_str().unwrap().to_string();
            let Ok(p) = w.json::<serde_json::Value>().await else {
                return;
            };
            record(Acked::Version {
                id: id as i64,
                version: p["version"].as_i64().unwrap(),
                etag,
                name,
            });
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_at_20_random_points_loses_no_acknowledged_write() {
    // A change log long enough to replay the whole test.
    let mut s = Server::start_with_args(&["--no-seed", "--change-log", "1000000"]);
    assert_eq!(
        health(&s).await["durability"]["value"],
        "full",
        "the writer must commit with synchronous=FULL"
    );
    let c = client();
    // A few products for the writers to fight over.
    for i in 0..6 {
        let r = send(c.post(s.url("/products")).json(&product_json(
            &format!("SHARED-{i}"),
            "shared",
            i,
            "in_stock",
        )))
        .await;
        assert_eq!(r.status, 201);
    }
    let acked = Arc::new(Mutex::new(Vec::new()));
    for round in 0..20 {
        let writers: Vec<_> = (0..4)
            .map(|w| tokio::spawn(writer(s.base_url(), w, acked.clone(), round)))
            .collect();
        // A random moment, mid-write.
        tokio::time::sleep(Duration::from_millis(30 + random_below(220))).await;
        s.kill9();
        for w in writers {
            let _ = tokio::time::timeout(Duration::from_secs(15), w).await;
        }
        s.restart().unwrap();
    }
    let acked = acked.lock().unwrap().clone();
    assert!(
        acked.len() > 40,
        "the workload wrote: {} acknowledged",
        acked.len()
    );
    check(&s, &acked).await;
}

/// Every acknowledged write present; histories contiguous; ETags one-to-one with
/// versions; the change log replays in order and agrees with the histories.
async fn check(s: &Server, acked: &[Acked]) {
    let c = client();
    let changes = replay_log(s).await;
    // Every product the log names or a writer was told of, live or deleted.
    let mut ids: Vec<i64> = changes.iter().map(|e| e.id).collect();
    for a in acked {
        let id = match a {
            Acked::Version { id, .. } | Acked::Deleted { id } => *id,
        };
        ids.push(id);
    }
    ids.sort_unstable();
    ids.dedup();

    // Histories: versions 1..=n, each ETag naming one version.
    let mut etags: HashMap<String, (i64, i64)> = HashMap::new();
    let mut histories: BTreeMap<i64, Vec<serde_json::Value>> = BTreeMap::new();
    for &id in &ids {
        let r = send(c.get(s.url(&format!("/products/{id}/versions")))).await;
        assert_eq!(r.status, 200, "product {id} has a history");
        let versions = r.json().as_array().unwrap().clone();
        for (i, v) in versions.iter().enumerate() {
            assert_eq!(
                v["version"].as_i64().unwrap(),
                i as i64 + 1,
                "product {id}: contiguous history {versions:?}"
            );
            let etag = v["etag"].as_str().unwrap().to_string();
            let seen = etags.insert(etag.clone(), (id, i as i64 + 1));
            assert!(seen.is_none(), "ETag {etag} names two versions");
        }
        histories.insert(id, versions);
    }

    for a in acked {
        match a {
            Acked::Version {
                id,
                version,
                etag,
                name,
            } => {
                assert_eq!(
                    etags.get(etag),
                    Some(&(*id, *version)),
                    "acknowledged version {version} of {id} ({etag}) is in its history"
                );
                let v = send(c.get(s.url(&format!("/products/{id}/versions/{version}"))))
                    .await
                    .json();
                assert_eq!(&v["name"], name, "product {id} version {version}");
            }
            Acked::Deleted { id } => {
                let r = send(c.get(s.url(&format!("/products/{id}")))).await;
                assert_eq!(r.status, 410, "acknowledged delete of {id} holds");
            }
        }
    }

    // The log agrees with the histories: per product, created at 1, then each version
    // in turn, the ETag of each its version's.
    let mut last_version: HashMap<i64, i64> = HashMap::new();
    for change in &changes {
        let previous = last_version.insert(change.id, change.version);
        match change.op {
            Op::Created => assert_eq!((previous, change.version), (None, 1)),
            Op::Updated => assert_eq!(previous, Some(change.version - 1), "{change:?}"),
            Op::Deleted => assert_eq!(previous, Some(change.version), "{change:?}"),
        }
        if change.op != Op::Deleted {
            assert_eq!(
                etags.get(&change.etag),
                Some(&(change.id, change.version)),
                "the event's ETag is its version's"
            );
        }
    }
    for (id, versions) in &histories {
        assert_eq!(
            last_version.get(id).copied(),
            Some(versions.len() as i64),
            "the log and the history of {id} agree"
        );
    }
}

/// The whole change log, replayed from the start; asserts it comes in order, without
/// gaps, up to the latest change.
async fn replay_log(s: &Server) -> Vec<ChangeEvent> {
    let c = client();
    let ready = first_event(s, None).await;
    let ready_id: EventId = ready.0.parse().unwrap();
    let latest = ready_id.seq;
    let from_start = EventId {
        seq: 0,
        ..ready_id.clone()
    }
    .to_string();
    let r = c
        .get(s.url("/events"))
        .header("Last-Event-ID", from_start)
        .send()
        .await
        .unwrap();
    let mut stream = r.bytes_stream().eventsource();
    let mut expected_seq = 1;
    let mut changes = Vec::new();
    while expected_seq <= latest {
        let e = tokio::time::timeout(Duration::from_secs(20), stream.next())
            .await
            .expect("the replay goes on")
            .expect("the stream is open")
            .expect("a well-formed event");
        assert_ne!(e.event, "reset", "the log keeps every change of this test");
        let change: ChangeEvent = serde_json::from_str(&e.data).unwrap();
        assert_eq!(
            change.seq, expected_seq,
            "the log replays in order, without gaps"
        );
        changes.push(change);
        expected_seq += 1;
    }
    changes
}

/// The id and data of the first event of a stream.
async fn first_event(s: &Server, last_event_id: Option<&str>) -> (String, String) {
    let mut req = client().get(s.url("/events"));
    if let Some(id) = last_event_id {
        req = req.header("Last-Event-ID", id);
    }
    let r = req.send().await.unwrap();
    let mut stream = r.bytes_stream().eventsource();
    let e = tokio::time::timeout(Duration::from_secs(20), stream.next())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    (e.id, e.data)
}

#[tokio::test]
async fn health_reports_the_durability_the_writer_runs_with() {
    let full = Server::start_with_args(&["--no-seed"]);
    let d = health(&full).await["durability"].clone();
    assert_eq!(d["engine"], "sqlite");
    assert_eq!(d["setting"], "synchronous");
    assert_eq!(d["value"], "full");
    let normal = Server::start_with_args(&["--no-seed", "--sync", "normal"]);
    assert_eq!(
        health(&normal).await["durability"]["value"],
        "normal",
        "a NORMAL writer is told apart, so the crash test above would fail on it"
    );
}
