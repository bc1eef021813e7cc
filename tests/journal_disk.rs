//! The disk journal: records survive reopening; a torn tail (a block cut
//! short or damaged at the very end) is cut off; any other damage is
//! reported with its file and offset; no damaged record is ever returned as
//! valid and no file content makes it panic.

use obzenflow::event::{Body, Envelope, EventId, Parents, StageId};
use obzenflow::journal::disk::{FORMAT_VERSION, read_journal, stream_journal, stream_raw};
use obzenflow::journal::{DiskJournal, DiskJournalError, DiskJournalOptions, FsyncPolicy};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};

/// A fresh directory under the target's temporary directory.
fn scratch(name: &str) -> PathBuf {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!(
        "journal_disk-{}-{name}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    ));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

/// A fixed-seed xorshift generator: `next(below)` is a number under `below`.
fn numbers(seed: u64) -> impl FnMut(u64) -> u64 {
    let mut state = seed;
    move |below| {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state % below
    }
}

fn envelope(seq: u64) -> Envelope<String> {
    Envelope {
        id: EventId {
            stage: StageId(2),
            seq,
        },
        parents: Parents::One(EventId {
            stage: StageId(1),
            seq: seq * 2,
        }),
        timestamp_micros: 1_700_000_000_000_000 + seq,
        body: Body::Data(format!(
            "record number {seq} {}",
            "x".repeat((seq % 7) as usize)
        )),
    }
}

fn write(dir: &Path, records: std::ops::Range<u64>, options: DiskJournalOptions) {
    let (mut journal, _) = DiskJournal::<String>::open(dir, options).unwrap();
    let all: Vec<_> = records.map(envelope).collect();
    for batch in all.chunks(3) {
        journal.append(batch).unwrap();
    }
}

fn segments(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "seg"))
        .collect();
    files.sort();
    files
}

/// Appends `batches` to a fresh journal named after `name` and reads it
/// back: every record, exactly (`round` names the case in a failure).
fn appended_and_read_back<T>(name: &str, round: u32, batches: &[Vec<Envelope<T>>])
where
    T: obzenflow::event::Payload + PartialEq + std::fmt::Debug,
{
    let dir = scratch(name);
    let (mut journal, _) = DiskJournal::<T>::open(&dir, DiskJournalOptions::default()).unwrap();
    for batch in batches {
        journal.append(batch).unwrap();
    }
    let written: Vec<_> = batches.concat();
    let (read, recovery) = read_journal::<T>(&dir).unwrap();
    assert_eq!(recovery.records, written.len() as u64, "round {round}");
    assert_eq!(read, written, "round {round}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn records_survive_reopening_and_appending_continues() {
    let dir = scratch("reopen");
    write(&dir, 0..10, DiskJournalOptions::default());
    let (mut journal, recovery) =
        DiskJournal::<String>::open(&dir, DiskJournalOptions::default()).unwrap();
    assert_eq!((recovery.records, recovery.truncated), (10, None));
    assert_eq!(journal.next_seq(), 10);
    journal.append(&[envelope(10), envelope(11)]).unwrap();
    let (records, _) = read_journal::<String>(&dir).unwrap();
    assert_eq!(records, (0..12).map(envelope).collect::<Vec<_>>());
    let error = journal.append(&[envelope(20)]).unwrap_err();
    assert!(
        error
            .to_string()
            .contains("appending sequence 20 where 12 comes next"),
        "{error}"
    );
}

#[test]
fn segments_roll_over_and_read_back_in_order() {
    let dir = scratch("roll");
    let options = DiskJournalOptions {
        segment_bytes: 200,
        fsync: FsyncPolicy::Never,
        ..DiskJournalOptions::default()
    };
    write(&dir, 0..40, options);
    assert!(segments(&dir).len() > 3, "{:?}", segments(&dir));
    let (records, recovery) = read_journal::<String>(&dir).unwrap();
    assert_eq!(recovery.records, 40);
    assert_eq!(records, (0..40).map(envelope).collect::<Vec<_>>());
}

/// Byte offsets where each block of a single-segment journal ends (`write`
/// appends three records at a time, one block each).
fn block_ends(blocks: u64) -> Vec<u64> {
    let probe = scratch("ends");
    (1..=blocks)
        .map(|n| {
            let _ = std::fs::remove_dir_all(&probe);
            write(&probe, 0..n * 3, DiskJournalOptions::default());
            std::fs::metadata(&segments(&probe)[0]).unwrap().len()
        })
        .collect()
}

#[test]
fn a_cut_anywhere_in_the_last_blocks_recovers_every_whole_block() {
    let dir = scratch("cut");
    write(&dir, 0..12, DiskJournalOptions::default());
    let segment = segments(&dir)[0].clone();
    let pristine = std::fs::read(&segment).unwrap();
    let ends = block_ends(4);
    assert_eq!(*ends.last().unwrap(), pristine.len() as u64);
    for cut in ends[0]..=pristine.len() as u64 {
        std::fs::write(&segment, &pristine[..cut as usize]).unwrap();
        // A block is one append: it survives whole or not at all.
        let whole = 3 * ends.iter().filter(|&&end| end <= cut).count() as u64;
        let (journal, recovery) =
            DiskJournal::<String>::open(&dir, DiskJournalOptions::default()).unwrap();
        assert_eq!(recovery.records, whole, "cut at {cut}");
        assert_eq!(journal.next_seq(), whole);
        let at_boundary = ends.contains(&cut);
        assert_eq!(recovery.truncated.is_some(), !at_boundary, "cut at {cut}");
        // The torn tail was cut off on disk: reading again finds nothing to cut.
        drop(journal);
        let (records, again) = read_journal::<String>(&dir).unwrap();
        assert_eq!(records, (0..whole).map(envelope).collect::<Vec<_>>());
        assert_eq!(again.truncated, None);
    }
}

#[test]
fn bit_flips_anywhere_give_a_clear_error_or_only_true_records() {
    let dir = scratch("flip");
    write(&dir, 0..30, DiskJournalOptions::default());
    let segment = segments(&dir)[0].clone();
    let pristine = std::fs::read(&segment).unwrap();
    let originals: Vec<Envelope<String>> = (0..30).map(envelope).collect();
    let mut state = 0x9e37_79b9_7f4a_7c15_u64;
    let mut errors = 0;
    for _ in 0..3_000 {
        state = state
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1);
        let bit = (state >> 20) as usize % (pristine.len() * 8);
        let mut bytes = pristine.clone();
        bytes[bit / 8] ^= 1 << (bit % 8);
        std::fs::write(&segment, &bytes).unwrap();
        match read_journal::<String>(&dir) {
            Ok((records, _)) => {
                assert!(records.len() <= originals.len());
                assert_eq!(records, originals[..records.len()], "flipped bit {bit}");
            }
            Err(DiskJournalError::Corrupt { path, reason, .. }) => {
                assert_eq!(path, segment);
                assert!(!reason.is_empty());
                errors += 1;
            }
            Err(DiskJournalError::NewerFormat { .. } | DiskJournalError::OlderFormat { .. }) => {
                errors += 1;
            }
            Err(other) => panic!("unexpected error for bit {bit}: {other}"),
        }
    }
    assert!(errors > 0, "some flips must be reported as corruption");
}

#[test]
fn damage_before_the_last_segment_names_the_file_and_offset() {
    let dir = scratch("middle");
    write(
        &dir,
        0..40,
        DiskJournalOptions {
            segment_bytes: 300,
            fsync: FsyncPolicy::Never,
            ..DiskJournalOptions::default()
        },
    );
    let first = segments(&dir)[0].clone();
    let mut bytes = std::fs::read(&first).unwrap();
    let target = bytes.len() - 3;
    bytes[target] ^= 0xff;
    std::fs::write(&first, &bytes).unwrap();
    let error = DiskJournal::<String>::open(&dir, DiskJournalOptions::default()).unwrap_err();
    match &error {
        DiskJournalError::Corrupt {
            path,
            offset,
            reason,
        } => {
            assert_eq!(path, &first);
            assert!(*offset > 16 && *offset < bytes.len() as u64, "{offset}");
            assert_eq!(reason, "a block's checksum does not match");
        }
        other => panic!("expected corruption, got {other}"),
    }
    let message = error.to_string();
    assert!(
        message.contains(&first.display().to_string()) && message.contains("is corrupt at byte"),
        "{message}"
    );
}

/// Rewrites a segment's header as version `version`, with a good checksum.
fn set_version(segment: &Path, version: u32) {
    let mut bytes = std::fs::read(segment).unwrap();
    bytes[4..8].copy_from_slice(&version.to_le_bytes());
    let check = crc32c::crc32c(&bytes[..12]);
    bytes[12..16].copy_from_slice(&check.to_le_bytes());
    std::fs::write(segment, &bytes).unwrap();
}

#[test]
fn a_newer_format_is_refused_with_a_clear_message() {
    let dir = scratch("newer");
    write(&dir, 0..2, DiskJournalOptions::default());
    set_version(&segments(&dir)[0], 9);
    let error = read_journal::<String>(&dir).unwrap_err();
    assert!(
        error.to_string().contains("has format version 9"),
        "{error}"
    );
}

#[test]
fn a_segment_of_format_3_is_refused_as_an_older_format() {
    let dir = scratch("format-3");
    write(&dir, 0..2, DiskJournalOptions::default());
    let segment = segments(&dir)[0].clone();
    let mut bytes = std::fs::read(&segment).unwrap();
    // How format 3 began: 8 magic bytes, the version, 4 spare bytes.
    bytes[..8].copy_from_slice(b"OBZFJNL\0");
    bytes[8..12].copy_from_slice(&3u32.to_le_bytes());
    bytes[12..16].fill(0);
    std::fs::write(&segment, &bytes).unwrap();
    let error = read_journal::<String>(&dir).unwrap_err();
    assert!(
        matches!(error, DiskJournalError::OlderFormat { found: 3, .. }),
        "{error}"
    );
}

#[test]
fn a_flipped_version_byte_is_corruption_not_another_format() {
    let dir = scratch("flipped-version");
    write(
        &dir,
        0..40,
        DiskJournalOptions {
            segment_bytes: 300,
            ..DiskJournalOptions::default()
        },
    );
    let first = segments(&dir)[0].clone();
    for (byte, bit) in [(4, 0x01), (5, 0x96), (7, 0x80), (8, 0x10), (0, 0x02)] {
        let pristine = std::fs::read(&first).unwrap();
        let mut bytes = pristine.clone();
        bytes[byte] ^= bit;
        std::fs::write(&first, &bytes).unwrap();
        let error = read_journal::<String>(&dir).unwrap_err();
        assert!(
            matches!(&error, DiskJournalError::Corrupt { path, offset: 0, .. } if *path == first),
            "byte {byte}: {error}"
        );
        std::fs::write(&first, &pristine).unwrap();
    }
}

#[test]
fn a_journal_opened_as_another_is_refused() {
    let dir = scratch("identity");
    let as_stage = |identity| DiskJournalOptions {
        identity,
        ..DiskJournalOptions::default()
    };
    write(&dir, 0..3, as_stage(7));
    assert_eq!(read_journal::<String>(&dir).unwrap().1.identity, Some(7));
    let error = DiskJournal::<String>::open(&dir, as_stage(8)).unwrap_err();
    assert!(
        matches!(&error, DiskJournalError::Corrupt { offset: 8, .. }),
        "{error}"
    );
    assert!(DiskJournal::<String>::open(&dir, as_stage(7)).is_ok());
}

#[cfg(unix)]
#[test]
fn journal_files_and_directories_are_owner_only() {
    use std::os::unix::fs::PermissionsExt;
    let dir = scratch("private").join("run").join("stage");
    write(&dir, 0..1, DiskJournalOptions::default());
    let mode = |path: &Path| std::fs::metadata(path).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&dir), 0o700);
    assert_eq!(mode(&segments(&dir)[0]), 0o600);
}

#[test]
fn damage_followed_by_valid_records_in_the_last_segment_is_corruption_not_a_torn_tail() {
    let dir = scratch("length");
    write(&dir, 0..12, DiskJournalOptions::default());
    let segment = segments(&dir)[0].clone();
    let ends = block_ends(4);
    let mut bytes = std::fs::read(&segment).unwrap();
    // Make the second block claim far more bytes than the segment holds.
    let at = ends[0] as usize;
    bytes[at + 3] = 0x7f;
    std::fs::write(&segment, &bytes).unwrap();
    let error = DiskJournal::<String>::open(&dir, DiskJournalOptions::default()).unwrap_err();
    assert!(
        matches!(&error, DiskJournalError::Corrupt { offset, .. } if *offset == ends[0]),
        "{error}"
    );
    // Nothing was cut off.
    assert_eq!(std::fs::read(&segment).unwrap(), bytes);
}

#[test]
fn an_older_format_is_refused_with_a_clear_message() {
    let dir = scratch("older");
    write(&dir, 0..2, DiskJournalOptions::default());
    let segment = segments(&dir)[0].clone();
    let older = FORMAT_VERSION - 1;
    set_version(&segment, older);
    let error = read_journal::<String>(&dir).unwrap_err();
    assert!(
        error.to_string().contains(&format!(
            "has format version {older}, which this ObzenFlow (format {FORMAT_VERSION}) no longer reads"
        )),
        "{error}"
    );
}

#[test]
fn every_kind_of_parents_and_a_clock_set_back_read_back_exactly() {
    let dir = scratch("parents");
    let id = |stage, seq| EventId {
        stage: StageId(stage),
        seq,
    };
    let records = vec![
        Envelope {
            id: id(7, 0),
            parents: Parents::None,
            timestamp_micros: 1_700_000_000_000_000,
            body: Body::Data("a".to_owned()),
        },
        Envelope {
            id: id(7, 1),
            parents: Parents::Many(vec![id(1, u64::MAX), id(u32::MAX, 0), id(3, 300)].into()),
            // Earlier than the block's first record: the clock was set back.
            timestamp_micros: 1_699_999_999_000_000,
            body: Body::Data(String::new()),
        },
        Envelope {
            id: id(7, 2),
            parents: Parents::Range([id(1, 5), id(1, u64::MAX)]),
            timestamp_micros: 1_699_999_999_000_000,
            body: Body::Data("b".to_owned()),
        },
        Envelope {
            id: id(7, 3),
            parents: Parents::One(id(2, 1 << 40)),
            timestamp_micros: u64::MAX,
            body: Body::Control(obzenflow::event::Control::Eof),
        },
    ];
    let (mut journal, _) =
        DiskJournal::<String>::open(&dir, DiskJournalOptions::default()).unwrap();
    journal.append(&records).unwrap();
    let (read, _) = read_journal::<String>(&dir).unwrap();
    assert_eq!(read, records);
}

#[test]
fn a_block_with_a_good_checksum_whose_records_do_not_parse_is_corruption() {
    let dir = scratch("unparsable");
    write(&dir, 0..3, DiskJournalOptions::default());
    let segment = segments(&dir)[0].clone();
    let mut bytes = std::fs::read(&segment).unwrap();
    // Claim four records in a block of three, and checksum the lie.
    let block = 16;
    bytes[block + 16] = 4;
    let crc = crc32c::crc32c(&bytes[block + 8..]);
    bytes[block + 4..block + 8].copy_from_slice(&crc.to_le_bytes());
    std::fs::write(&segment, &bytes).unwrap();
    let error = read_journal::<String>(&dir).unwrap_err();
    assert!(
        matches!(&error, DiskJournalError::Corrupt { offset: 16, reason, .. }
            if reason.contains("has a good checksum but its records do not parse")),
        "{error}"
    );
}

#[test]
fn random_bytes_never_panic_and_never_pass_as_records() {
    let dir = scratch("random");
    write(&dir, 0..30, DiskJournalOptions::default());
    let segment = segments(&dir)[0].clone();
    let pristine = std::fs::read(&segment).unwrap();
    let originals: Vec<Envelope<String>> = (0..30).map(envelope).collect();
    let mut next = numbers(0x2545_f491_4f6c_dd1d);
    for round in 0..600 {
        let noise: Vec<u8> = (0..next(2_000)).map(|_| next(256) as u8).collect();
        // Pure noise; a real header then noise; a real journal then noise.
        let (bytes, keep) = match round % 3 {
            0 => (noise, 0),
            1 => ([&pristine[..16], &noise[..]].concat(), 0),
            _ => ([&pristine[..], &noise[..]].concat(), originals.len()),
        };
        std::fs::write(&segment, &bytes).unwrap();
        match read_journal::<String>(&dir) {
            // Noise never decodes as a record: whatever is read is the
            // original prefix, and no more than was really written.
            Ok((records, _)) => {
                assert!(records.len() <= keep, "round {round}");
                assert_eq!(records, originals[..records.len()], "round {round}");
            }
            Err(
                DiskJournalError::Corrupt { .. }
                | DiskJournalError::NewerFormat { .. }
                | DiskJournalError::OlderFormat { .. },
            ) => {}
            Err(other) => panic!("round {round}: unexpected error {other}"),
        }
    }
}

/// Records shaped as stages write them, with every kind of run the blocks
/// store by column broken at random: timestamps shared or not, parents
/// none, consecutive, repeated, many or jumping, bodies of one length, alike,
/// or all different, and the runs of each column ending at random places.
#[test]
fn records_of_every_shape_read_back_exactly() {
    let mut next = numbers(0x9e37_79b9_7f4a_7c15);
    let id = |stage, seq| EventId {
        stage: StageId(stage),
        seq,
    };
    for round in 0..150 {
        let mut batches: Vec<Vec<Envelope<String>>> = Vec::new();
        let mut written = 0;
        let (mut time, mut parent, mut body) = (1_700_000_000_000_000_u64, 0u64, String::new());
        for _ in 0..1 + next(8) {
            let mut batch = Vec::new();
            for _ in 0..1 + next(60) {
                if next(4) == 0 {
                    // Mostly later, sometimes earlier (a clock set back).
                    time = time.wrapping_add(next(1_000_000)).wrapping_sub(next(1_000));
                }
                let parents = match next(11) {
                    0 => Parents::None,
                    10 => Parents::Range([id(1, next(1000)), id(1, 1000 + next(1000))]),
                    1 => Parents::Many(
                        (0..next(4))
                            .map(|k| id(next(3) as u32, k * 1000 + next(9)))
                            .collect(),
                    ),
                    2 => Parents::One(id(next(2) as u32, parent)),
                    3 => {
                        parent = next(u64::MAX);
                        Parents::One(id(9, parent))
                    }
                    _ => {
                        parent = parent.wrapping_add(1);
                        Parents::One(id(1, parent))
                    }
                };
                match next(7) {
                    0 => body = "x".repeat(next(5) as usize),
                    1 => body = format!("{:04}", next(10_000)),
                    // Longer than the room the encoder makes for a body.
                    2 => body = "y".repeat(33 + next(60) as usize),
                    _ => {}
                }
                let body = match next(20) {
                    0 => Body::Control(obzenflow::event::Control::Eof),
                    1 => Body::Error(Box::new(obzenflow::event::ErrorRecord {
                        stage: "stage".into(),
                        kind: obzenflow::event::ErrorKind::Permanent,
                        message: format!("failure {}", next(3)),
                        input_id: Some(id(1, parent)),
                        input: None,
                    })),
                    _ => Body::Data(body.clone()),
                };
                batch.push(Envelope {
                    id: id(7, written + batch.len() as u64),
                    parents,
                    timestamp_micros: time,
                    body,
                });
            }
            written += batch.len() as u64;
            batches.push(batch);
        }
        appended_and_read_back("shapes", round, &batches);
    }
}

/// A sink's receipts: the encoder counts a plain receipt that continues a
/// run of them without serializing it. Runs of plain receipts broken by
/// receipts with details, control markers (one of which serializes to as
/// many bytes as a plain receipt) and errors read back exactly, and a
/// thousand plain receipts in a row store one body.
#[test]
fn receipts_in_runs_and_among_other_bodies_read_back_exactly() {
    use obzenflow::event::{Control, ErrorKind, ErrorRecord};
    use obzenflow::stage::Receipt;
    let mut next = numbers(0x2545_f491_4f6c_dd1d);
    let envelope = |seq: u64, body| Envelope {
        id: EventId {
            stage: StageId(3),
            seq,
        },
        parents: Parents::One(EventId {
            stage: StageId(2),
            seq,
        }),
        timestamp_micros: 1_700_000_000_000_000,
        body,
    };
    for round in 0..100 {
        let mut batches = Vec::new();
        let mut written = 0;
        for _ in 0..1 + next(6) {
            let mut batch = Vec::new();
            for _ in 0..1 + next(40) {
                let body = match next(12) {
                    0 => Body::Data(Receipt::with_detail("a")),
                    1 => Body::Data(Receipt::with_detail(format!("{}", next(3)))),
                    2 => Body::Control(Control::Eof),
                    3 => Body::Control(Control::Probe(next(2) as u32)),
                    4 => Body::Error(Box::new(ErrorRecord {
                        stage: "total".into(),
                        kind: ErrorKind::Permanent,
                        message: "refused".into(),
                        input_id: None,
                        input: None,
                    })),
                    _ => Body::Data(Receipt::delivered()),
                };
                batch.push(envelope(written + batch.len() as u64, body));
            }
            written += batch.len() as u64;
            batches.push(batch);
        }
        appended_and_read_back("receipts", round, &batches);
    }

    let dir = scratch("plain-receipts");
    let (mut journal, _) =
        DiskJournal::<Receipt>::open(&dir, DiskJournalOptions::default()).unwrap();
    let plain: Vec<_> = (0..1000)
        .map(|seq| envelope(seq, Body::Data(Receipt::delivered())))
        .collect();
    journal.append(&plain).unwrap();
    let bytes: u64 = segments(&dir)
        .iter()
        .map(|file| std::fs::metadata(file).unwrap().len())
        .sum();
    assert!(bytes < 100, "1000 plain receipts took {bytes} bytes");
    assert_eq!(read_journal::<Receipt>(&dir).unwrap().0, plain);
    let _ = std::fs::remove_dir_all(&dir);
}
/// A stream reads what `read_journal` reads, in batches of the size asked
/// for, across segments; it reports a torn tail once it ends, stops with the
/// error at corruption, and can be dropped half-read.
#[test]
fn a_stream_reads_what_read_journal_reads_a_batch_at_a_time() {
    let dir = scratch("stream");
    let options = DiskJournalOptions {
        segment_bytes: 300,
        ..DiskJournalOptions::default()
    };
    write(&dir, 0..100, options);
    assert!(segments(&dir).len() > 3, "several segments");
    let (all, _) = read_journal::<String>(&dir).unwrap();
    let mut stream = stream_journal::<String>(&dir, 7).unwrap();
    let batches: Vec<Vec<Envelope<String>>> = stream.by_ref().map(Result::unwrap).collect();
    assert!(batches[..batches.len() - 1].iter().all(|b| b.len() == 7));
    assert_eq!(batches.concat(), all);
    assert_eq!(
        stream
            .recovery()
            .map(|r| (r.records, r.truncated.is_some())),
        Some((100, false))
    );

    // Half a block at the end: the stream gives the whole blocks and says
    // where the tail was torn, without cutting it off.
    let last = segments(&dir).pop().unwrap();
    let bytes = std::fs::read(&last).unwrap();
    std::fs::write(&last, &bytes[..bytes.len() - 5]).unwrap();
    let mut stream = stream_raw(&dir, 1000).unwrap();
    let records: Vec<_> = stream.by_ref().flat_map(Result::unwrap).collect();
    assert!(
        records.len() < 100 && records.len() % 3 == 0,
        "{}",
        records.len()
    );
    let torn = stream.recovery().and_then(|r| r.truncated.clone()).unwrap();
    assert_eq!(torn.0, last);
    assert_eq!(
        std::fs::metadata(&last).unwrap().len(),
        bytes.len() as u64 - 5
    );

    // Damage in the first segment: the records before it, then the error.
    let first = segments(&dir)[0].clone();
    let mut bytes = std::fs::read(&first).unwrap();
    bytes[30] ^= 0x40;
    std::fs::write(&first, &bytes).unwrap();
    let results: Vec<_> = stream_raw(&dir, 1).unwrap().collect();
    assert!(matches!(
        results.last(),
        Some(Err(DiskJournalError::Corrupt { path, .. })) if *path == first
    ));
    assert!(results[..results.len() - 1].iter().all(Result::is_ok));

    // Dropped after one batch: the reading thread stops, nothing hangs.
    let mut stream = stream_raw(&dir, 1).unwrap();
    assert!(stream.next().is_some());
    drop(stream);
}

/// A block may hold many records in a few bytes (a run of identical bodies):
/// damage to one followed by a valid block is still corruption, however far
/// the valid block's sequence number is from the damaged one's.
#[test]
fn damage_to_a_dense_block_followed_by_a_valid_one_is_corruption() {
    let dir = scratch("dense");
    let receipt = |seq: u64| Envelope {
        id: EventId {
            stage: StageId(2),
            seq,
        },
        parents: Parents::One(EventId {
            stage: StageId(1),
            seq,
        }),
        timestamp_micros: 1_700_000_000_000_000,
        body: Body::Data("delivered".to_owned()),
    };
    let (mut journal, _) =
        DiskJournal::<String>::open(&dir, DiskJournalOptions::default()).unwrap();
    journal.append(&[receipt(0)]).unwrap();
    let dense: Vec<_> = (1..100_001).map(receipt).collect();
    journal.append(&dense).unwrap();
    journal.append(&[receipt(100_001)]).unwrap();
    drop(journal);
    let segment = segments(&dir)[0].clone();
    let mut bytes = std::fs::read(&segment).unwrap();
    assert!(
        bytes.len() < 400,
        "{} bytes for 100,002 records",
        bytes.len()
    );
    // The second block starts after the header and the first block.
    let first_len = u32::from_le_bytes(bytes[16..20].try_into().unwrap()) as usize;
    let second = 16 + 8 + first_len;
    bytes[second + 8 + 30] ^= 0x01;
    std::fs::write(&segment, &bytes).unwrap();
    let error = read_journal::<String>(&dir).unwrap_err();
    assert!(
        matches!(&error, DiskJournalError::Corrupt { offset, .. } if *offset == second as u64),
        "{error}"
    );
}

/// Opening a journal costs no fsync: its names become durable with its
/// first sync, so a machine crash before that can leave the directory with
/// no segment, or a segment whose header was cut short. Each state reads as
/// an empty journal, and reopening it appends from the start.
#[test]
fn a_journal_cut_off_before_its_first_sync_reads_as_empty() {
    let header: Vec<u8> = {
        let dir = scratch("header");
        write(&dir, 0..0, DiskJournalOptions::default());
        std::fs::read(&segments(&dir)[0]).unwrap()
    };
    assert_eq!(header.len(), 16, "a fresh segment holds its header only");
    for cut in [None, Some(0), Some(5), Some(15)] {
        let dir = scratch("unsynced");
        std::fs::create_dir_all(&dir).unwrap();
        if let Some(cut) = cut {
            std::fs::write(dir.join(format!("{:020}.seg", 0)), &header[..cut]).unwrap();
        }
        let (records, recovery) = read_journal::<String>(&dir).unwrap();
        assert!(records.is_empty(), "cut at {cut:?}");
        assert_eq!(recovery.records, 0);
        assert_eq!(
            recovery.truncated.map(|(_, at, dropped)| (at, dropped)),
            cut.map(|cut| (0, cut as u64)),
            "cut at {cut:?}"
        );
        write(&dir, 0..4, DiskJournalOptions::default());
        let (records, _) = read_journal::<String>(&dir).unwrap();
        assert_eq!(records, (0..4).map(envelope).collect::<Vec<_>>());
    }
}

/// A record larger than a journal record may be is refused with an error
/// that says so, also after large records left the encoder's buffers grown
/// past that size, and the journal then goes on from the refused record.
#[test]
fn a_record_too_large_is_refused_and_the_journal_goes_on() {
    const MIB: usize = 1024 * 1024;
    let dir = scratch("too-large");
    let (mut journal, _) =
        DiskJournal::<String>::open(&dir, DiskJournalOptions::default()).unwrap();
    let sized = |seq: u64, len: usize| Envelope {
        body: Body::Data("z".repeat(len)),
        ..envelope(seq)
    };
    let refused = |error: DiskJournalError| {
        let message = error.to_string();
        assert!(
            message.contains("larger than a journal record may be"),
            "{message}"
        );
    };
    refused(journal.append(&[sized(0, 65 * MIB)]).unwrap_err());
    // Two records of 40 MiB in one block: the block's buffers hold 80 MiB.
    journal
        .append(&[sized(0, 40 * MIB), sized(1, 40 * MIB)])
        .unwrap();
    refused(journal.append(&[sized(2, 65 * MIB)]).unwrap_err());
    journal.append(&[envelope(2)]).unwrap();
    drop(journal);
    let (records, _) = read_journal::<String>(&dir).unwrap();
    let lengths: Vec<usize> = records
        .iter()
        .map(|record| record.data().map_or(0, String::len))
        .collect();
    assert_eq!(
        lengths,
        [40 * MIB, 40 * MIB, envelope(2).data().unwrap().len()]
    );
    let _ = std::fs::remove_dir_all(&dir);
}
