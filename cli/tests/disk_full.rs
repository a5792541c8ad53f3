//! A full disk under the embedded stream, on the real binary: writes that fail for want of
//! room are retried like throttling until the records' time to live, then given up on into
//! the dead-letter file, so every event is in the stream or in that file, none in neither;
//! and when the dead-letter file is on the full disk too, the run says how many are lost.
//! The disk is a 4 MiB tmpfs in a private mount namespace (`unshare`), so no root is needed.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a panic is the failure report
use std::path::Path;
use std::process::Command;

const EVENTS: u64 = 100_000;

/// Runs `inlet produce` with its data dir on a fresh 4 MiB tmpfs, then counts what the
/// stream holds (inside the namespace: the tmpfs goes with it). Returns the exit code and
/// the output.
fn produce_on_a_full_disk(dir: &Path, dead_letter: &Path) -> (Option<i32>, String) {
    let full = dir.join("full");
    std::fs::create_dir_all(&full).unwrap();
    let inlet = env!("CARGO_BIN_EXE_inlet");
    let (full, dead) = (full.display(), dead_letter.display());
    let script = format!(
        "mount -t tmpfs -o size=4m tmpfs {full} || exit 90
         {inlet} produce --data-dir {full} --events {EVENTS} --record-ttl 3s --dead-letter {dead}
         status=$?
         {inlet} replay ndjson --dry-run --data-dir {full} || exit 91
         exit $status"
    );
    let out = Command::new("unshare")
        .args(["--user", "--map-root-user", "--mount", "sh", "-c", &script])
        .env("RUST_LOG", "off")
        .output()
        .expect("unshare (util-linux) runs");
    let text = String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    assert!(
        !matches!(out.status.code(), Some(90 | 91)),
        "no private tmpfs (unshare and mount must work here):\n{text}"
    );
    (out.status.code(), text)
}

/// The number after `before` in `text` (with thousands separators).
fn number_after(text: &str, before: &str) -> u64 {
    let at = text.find(before).unwrap_or_else(|| panic!("no {before:?} in:\n{text}")) + before.len();
    text[at..]
        .chars()
        .take_while(|c| c.is_ascii_digit() || *c == ',')
        .filter(char::is_ascii_digit)
        .collect::<String>()
        .parse()
        .unwrap_or_else(|_| panic!("no number after {before:?} in:\n{text}"))
}

#[test]
#[ignore = "needs unshare (user and mount namespaces) for a small tmpfs: run infra/test.sh"]
fn every_event_is_in_the_stream_or_the_dead_letter_file() {
    let tmp = tempfile::tempdir().unwrap();
    let dead = tmp.path().join("dead-letters.ndjson");
    let (code, text) = produce_on_a_full_disk(tmp.path(), &dead);
    assert_eq!(code, Some(1), "{text}");
    let not_delivered = number_after(&text, "error: ");
    assert!(
        not_delivered > 0 && not_delivered < EVENTS,
        "the disk filled mid-run:\n{text}"
    );
    assert!(
        text.contains(&format!("of {} events were not delivered", "100,000")),
        "{text}"
    );
    assert!(!text.contains("lost"), "{text}");
    // Each undelivered event is a line of the dead-letter file, each delivered one is in
    // the stream, and they add up.
    let lines = std::fs::read_to_string(&dead).unwrap().lines().count() as u64;
    assert_eq!(lines, not_delivered, "{text}");
    let in_stream = number_after(&text, "stream records, ");
    assert_eq!(in_stream + not_delivered, EVENTS, "{text}");
}

#[test]
#[ignore = "needs unshare (user and mount namespaces) for a small tmpfs: run infra/test.sh"]
fn events_the_dead_letter_file_cannot_take_are_reported_lost() {
    let tmp = tempfile::tempdir().unwrap();
    let dead = tmp.path().join("full").join("dead-letters.ndjson");
    let (code, text) = produce_on_a_full_disk(tmp.path(), &dead);
    assert_eq!(code, Some(1), "{text}");
    let not_delivered = number_after(&text, "error: ");
    let lost = number_after(&text, "not delivered\nerror: ");
    assert!(lost > 0 && lost <= not_delivered, "{text}");
    assert!(
        text.contains("could not be written to the dead-letter file either"),
        "{text}"
    );
    assert_eq!(
        number_after(&text, "stream records, ") + not_delivered,
        EVENTS,
        "{text}"
    );
}
