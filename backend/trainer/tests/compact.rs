//! `compact` on a logs dataset of three replicas × 2,000 records in 5-minute shards over four
//! days (issue 31.7): only whole UTC days that ended 48 h ago, never the newest shard; count
//! and content unchanged, each record once, a folder down to a file a day; a reader pinned to
//! the commit before the compaction still reads everything after it; a late shard of a
//! compacted day joins its day's file; a run with nothing to do commits nothing.

use hub::{AddFile, HubClient, HubConfig, Repo, TokenSource};
use hub_stand_in::{Faults, HubStandIn};
use sentiment_trainer::logs::compact::{compact, CompactOptions};
use sentiment_trainer::monitor::{parse_shards, read_hub};
use std::collections::BTreeMap;
use std::time::{Duration, SystemTime};

const DAY: u64 = 86_400;
/// 2026-11-01T00:00:00Z
const START: u64 = 1_793_491_200;

fn client(endpoint: &str) -> HubClient {
    HubClient::new(HubConfig {
        token: Some("hf_test".into()),
        token_source: TokenSource::Env,
        ..HubConfig::new(endpoint)
    })
}

fn rfc3339(secs: u64) -> String {
    humantime::format_rfc3339_millis(SystemTime::UNIX_EPOCH + Duration::from_secs(secs)).to_string()
}

/// Shard `n` (1-based) of `replica`: 10 records, 5 minutes after the previous shard, 50 a day.
fn shard(replica: usize, n: u64) -> Vec<u8> {
    let t0 = START + (n - 1) / 50 * DAY + (n - 1) % 50 * 300;
    let mut out = String::new();
    for i in 0..10 {
        let id = format!("{:08x}-0000-4000-8000-{:012x}", replica, n * 100 + i);
        out += &serde_json::json!({
            "id": id, "text": format!("post {replica}/{n}/{i}"), "predicted": "neutral",
            "scores": {"negative": 0.2, "neutral": 0.5, "positive": 0.3}, "label": "positive",
            "model_version": "v1", "received_at": rfc3339(t0 + i),
        })
        .to_string();
        out.push('\n');
    }
    out.into_bytes()
}

/// Every record line by id, from all data files at `rev`.
fn lines_at(client: &HubClient, rev: &str) -> BTreeMap<String, (String, usize)> {
    let repo = Repo::dataset("acme/logs".parse().unwrap()).at_revision(rev);
    let mut out: BTreeMap<String, (String, usize)> = BTreeMap::new();
    for e in client.list_tree(&repo, "data", true).unwrap().into_iter().filter(|e| e.kind == "file") {
        let bytes = client.download(&repo, &e.path).unwrap();
        for line in String::from_utf8(bytes).unwrap().lines() {
            let id = serde_json::from_str::<serde_json::Value>(line).unwrap()["id"].as_str().unwrap().to_string();
            let entry = out.entry(id).or_insert((line.to_string(), 0));
            assert_eq!(entry.0, line, "the same id with other content");
            entry.1 += 1;
        }
    }
    out
}

fn folder_sizes(client: &HubClient) -> Vec<usize> {
    let repo = Repo::dataset("acme/logs".parse().unwrap());
    let mut by: BTreeMap<String, usize> = BTreeMap::new();
    for e in client.list_tree(&repo, "data", true).unwrap().into_iter().filter(|e| e.kind == "file") {
        *by.entry(e.path.rsplit_once('/').unwrap().0.to_string()).or_default() += 1;
    }
    by.into_values().collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn compaction_keeps_every_record_once_for_every_reader() {
    let hub = HubStandIn::start("127.0.0.1:0".parse().unwrap(), Faults::default()).await.unwrap();
    hub.create_repo("datasets/acme/logs");
    let endpoint = hub.endpoint();
    tokio::task::spawn_blocking(move || {
        let c = client(&endpoint);
        let repo = Repo::dataset("acme/logs".parse().unwrap());
        for replica in 0..3 {
            for batch in 0..4 {
                let files: Vec<AddFile> = (batch * 50 + 1..=batch * 50 + 50)
                    .map(|n| AddFile {
                        path: format!("data/replica-{replica}/{n:08}.jsonl"),
                        content: shard(replica, n),
                    })
                    .collect();
                c.upload_files(&repo, &files, "sync").unwrap();
            }
        }
        let before_commit = c.repo_info(&repo).unwrap().sha;
        let before = lines_at(&c, &before_commit);
        assert_eq!(before.len(), 6_000);
        assert_eq!(folder_sizes(&c), [200, 200, 200]);

        // Only whole UTC days that ended 48 h ago or more: a second before the third day's
        // 48 h are up, the first two days are compacted, not the third or fourth.
        let at = |secs: u64| SystemTime::UNIX_EPOCH + Duration::from_secs(secs);
        let mut opts = CompactOptions {
            dataset: "acme/logs".parse().unwrap(),
            min_age: Duration::from_secs(2 * DAY),
            labels: ["negative", "neutral", "positive"].map(String::from).to_vec(),
            now: at(START + 5 * DAY - 1),
        };
        let r = compact(&c, &opts).unwrap();
        println!("{r:?}");
        assert!(r.commit.is_some() && r.card_written);
        assert_eq!((r.merged_files, r.written_files, r.records), (3 * 100, 6, 3_000));
        assert_eq!(folder_sizes(&c), [102, 102, 102]);
        assert_eq!(lines_at(&c, "main"), before);
        // Two days later all four days are old enough; each replica's newest shard stays.
        opts.now = at(START + 6 * DAY);
        let r = compact(&c, &opts).unwrap();
        println!("{r:?}");
        assert!(r.commit.is_some() && !r.card_written);
        assert_eq!((r.merged_files, r.written_files, r.records), (3 * 99, 6, 2_970));
        assert_eq!(folder_sizes(&c), [5, 5, 5]);
        let after = lines_at(&c, "main");
        assert_eq!(after, before, "count and content unchanged, each record once");
        // A reader that listed before the compaction still reads its commit afterwards.
        assert_eq!(lines_at(&c, &before_commit), before);
        // The trainer's reader (pinned to one commit) sees the 6,000 records, no duplicates.
        let set = read_hub(&c, &"acme/logs".parse().unwrap()).unwrap();
        assert_eq!((set.records.len(), set.duplicates, set.unreadable_lines), (6_000, 0, 0));
        let files = hub.files("datasets/acme/logs");
        assert!(files.contains_key("data/replica-0/00000001-00000050.jsonl"));
        assert!(files.contains_key("data/replica-0/00000151-00000199.jsonl"));
        assert!(files.contains_key("data/replica-0/00000200.jsonl"));
        let card = String::from_utf8(files["README.md"].clone()).unwrap();
        assert!(card.contains("path: \"data/**/*.jsonl\""), "{card}");

        // Nothing more to do, until a late shard of day 4 arrives (and a newer one).
        assert_eq!(compact(&c, &opts).unwrap().commit, None);
        let late = |n: u64| AddFile { path: format!("data/replica-0/{n:08}.jsonl"), content: shard(0, 200) };
        c.upload_files(&repo, &[late(201), late(202)], "late sync").unwrap();
        let r = compact(&c, &opts).unwrap();
        assert_eq!((r.merged_files, r.written_files, r.card_written), (3, 1, false), "{r:?}");
        let files = hub.files("datasets/acme/logs");
        assert!(files.contains_key("data/replica-0/00000151-00000201.jsonl"), "{:?}", files.keys().collect::<Vec<_>>());
        assert!(files.contains_key("data/replica-0/00000202.jsonl"));
        // The late shards repeat shard 200's records: the raw dataset now holds them 3 times,
        // still as whole lines, which the reader counts as duplicates.
        let all: Vec<Vec<u8>> = files.iter().filter(|(p, _)| p.ends_with(".jsonl")).map(|(_, b)| b.clone()).collect();
        let set = parse_shards(all.iter().map(Vec::as_slice));
        assert_eq!((set.records.len(), set.duplicates), (6_000, 20));
    })
    .await
    .unwrap();
}
