//! The memory journal on its own: batches, positions, trimming, retention,
//! fan-out readers and the writer held back by a slow reader.

use obzenflow::event::{Body, Parents, StageId};
use obzenflow::journal::{
    Journal, JournalError, JournalOptions, JournalReader, JournalWriter, MemoryJournal,
};
use std::time::Duration;

fn journal(capacity: usize, retain_all: bool) -> MemoryJournal<u32> {
    MemoryJournal::new(
        StageId(3),
        JournalOptions {
            capacity,
            retain_all,
            ..JournalOptions::default()
        },
    )
}

async fn write(
    writer: &mut JournalWriter<u32, MemoryJournal<u32>>,
    values: impl IntoIterator<Item = u32>,
) {
    for value in values {
        writer.push(Parents::None, Body::Data(value));
    }
    writer.flush().await.unwrap();
}

fn values(entries: &[obzenflow::event::Envelope<u32>]) -> Vec<u32> {
    entries.iter().filter_map(|e| e.data().copied()).collect()
}

#[tokio::test]
async fn readers_see_every_batch_in_order_with_sequence_numbers() {
    let journal = journal(1_000, false);
    let mut first = journal.reader(0).unwrap();
    let mut second = journal.reader(0).unwrap();
    let mut writer = JournalWriter::new(journal.clone(), StageId(3));
    write(&mut writer, [1, 2, 3]).await;
    write(&mut writer, [4]).await;
    let chunk = first.next_chunk().await.unwrap();
    assert_eq!(values(chunk.entries()), [1, 2, 3]);
    assert_eq!(chunk.entries()[2].id.seq, 2);
    assert_eq!(chunk.entries()[2].stage(), StageId(3));
    assert_eq!(values(first.next_chunk().await.unwrap().entries()), [4]);
    assert_eq!(first.position(), 4);
    // The second reader still gets everything: nothing was trimmed under it.
    assert_eq!(
        values(&second.next_chunk().await.unwrap().into_entries()),
        [1, 2, 3]
    );
    assert_eq!(journal.next_seq(), 4);
}

#[tokio::test]
async fn what_every_reader_has_read_is_trimmed_unless_retained() {
    let trimmed = journal(1_000, false);
    let mut reader = trimmed.reader(0).unwrap();
    let mut writer = JournalWriter::new(trimmed.clone(), StageId(3));
    write(&mut writer, [1, 2]).await;
    reader.next_chunk().await.unwrap();
    assert!(trimmed.snapshot().is_empty());
    assert_eq!(
        trimmed.reader(0).unwrap_err(),
        JournalError::Trimmed {
            stage: 3,
            requested: 0,
            oldest: 2
        }
    );

    let retained = journal(1_000, true);
    let mut reader = retained.reader(0).unwrap();
    let mut writer = JournalWriter::new(retained.clone(), StageId(3));
    write(&mut writer, [1, 2]).await;
    reader.next_chunk().await.unwrap();
    assert_eq!(values(&retained.snapshot()), [1, 2]);
    let mut late = retained.reader(1).unwrap();
    assert_eq!(values(late.next_chunk().await.unwrap().entries()), [2]);
}

#[tokio::test]
async fn a_batch_with_the_wrong_sequence_is_refused() {
    let journal = journal(10, false);
    let mut stale = JournalWriter::new(journal.clone(), StageId(3));
    let mut writer = JournalWriter::new(journal.clone(), StageId(3));
    write(&mut writer, [1]).await;
    stale.push(Parents::None, Body::Data(9));
    assert_eq!(
        stale.flush().await.unwrap_err(),
        JournalError::SequenceGap {
            stage: 3,
            expected: 1,
            got: 0
        }
    );
}

#[tokio::test(start_paused = true)]
async fn a_writer_waits_while_its_slowest_reader_is_a_capacity_behind() {
    let journal = journal(4, false);
    let mut reader = journal.reader(0).unwrap();
    let mut writer = JournalWriter::new(journal.clone(), StageId(3));
    write(&mut writer, [1, 2, 3, 4]).await;
    assert_eq!(journal.lag(), 4);
    let blocked = tokio::spawn(async move {
        write(&mut writer, [5]).await;
    });
    tokio::time::advance(Duration::from_secs(3600)).await;
    assert!(
        !blocked.is_finished(),
        "the writer waits for the reader, however long"
    );
    reader.next_chunk().await.unwrap();
    blocked.await.unwrap();
    assert_eq!(values(reader.next_chunk().await.unwrap().entries()), [5]);
}

#[tokio::test(start_paused = true)]
async fn a_reader_waits_for_the_next_batch_without_spinning() {
    let journal = journal(10, false);
    let mut reader = journal.reader(0).unwrap();
    let waiting = tokio::spawn(async move { values(reader.next_chunk().await.unwrap().entries()) });
    tokio::time::advance(Duration::from_secs(60)).await;
    assert!(!waiting.is_finished());
    let mut writer = JournalWriter::new(journal.clone(), StageId(3));
    write(&mut writer, [7]).await;
    assert_eq!(waiting.await.unwrap(), [7]);
}

#[tokio::test]
async fn a_dropped_reader_no_longer_holds_entries_back() {
    let journal = journal(2, false);
    let slow = journal.reader(0).unwrap();
    let mut writer = JournalWriter::new(journal.clone(), StageId(3));
    write(&mut writer, [1, 2]).await;
    drop(slow);
    // With no reader left, the journal neither holds entries nor waits.
    write(&mut writer, [3, 4, 5]).await;
    assert!(journal.snapshot().is_empty());
}

/// A window of 48 KiB holds three batches of two 8 KiB strings, not four;
/// a batch larger than the window still goes through when nothing is
/// unread; and the entry count still binds small records.
#[tokio::test]
async fn the_window_is_bounded_in_bytes_as_well_as_in_entries() {
    let journal = MemoryJournal::<String>::new(
        StageId(5),
        JournalOptions {
            capacity: 1_000,
            capacity_bytes: 48 << 10,
            ..JournalOptions::default()
        },
    );
    let mut reader = journal.reader(0).unwrap();
    let mut writer = JournalWriter::new(journal.clone(), StageId(5));
    let record = "r".repeat(8 << 10);
    for _ in 0..3 {
        writer.push(Parents::None, Body::Data(record.clone()));
        writer.push(Parents::None, Body::Data(record.clone()));
        writer.flush().await.unwrap();
    }
    let lag = journal.lag_bytes();
    assert!(
        (48 << 10..56 << 10).contains(&lag),
        "6 records of 8 KiB and their envelopes: {lag}"
    );
    writer.push(Parents::None, Body::Data(record.clone()));
    let mut fourth = std::pin::pin!(writer.flush());
    assert!(
        waits(fourth.as_mut()),
        "the fourth batch waits: {lag} bytes are unread"
    );
    // The reader takes one batch: room again.
    reader.next_chunk().await.unwrap();
    fourth.await.unwrap();
    assert_eq!(journal.lag(), 5);

    // One batch larger than the whole window, into an empty window.
    let big = MemoryJournal::<String>::new(
        StageId(6),
        JournalOptions {
            capacity_bytes: 1 << 10,
            ..JournalOptions::default()
        },
    );
    let _reader = big.reader(0).unwrap();
    let mut writer = JournalWriter::new(big.clone(), StageId(6));
    writer.push(Parents::None, Body::Data(record.clone()));
    writer.flush().await.unwrap();
    writer.push(Parents::None, Body::Data(record));
    assert!(
        waits(std::pin::pin!(writer.flush())),
        "but not a second one"
    );
}

/// Polls `future` once: whether it is waiting (a flush waits for room).
fn waits<F: std::future::Future>(future: std::pin::Pin<&mut F>) -> bool {
    let mut context = std::task::Context::from_waker(std::task::Waker::noop());
    future.poll(&mut context).is_pending()
}
