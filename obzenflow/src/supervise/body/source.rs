//! A source: polls its handler (or, in a replay, reads its archived journal)
//! and writes what it gives; asked to stop, it ends its output with a stop
//! mark so that every stage downstream drains as stopped.

use super::{Output, StageBody, Step};
use crate::event::{Body, Control, Parents, Payload};
use crate::stage::{Poll, Source, StageError};
use crate::supervise::failure::StageFailure;
use crate::supervise::status::StageCounters;
use std::time::Instant as StdInstant;

pub(crate) struct SourceBody<T: Payload, S> {
    pub(crate) handler: S,
    pub(crate) output: Output<T>,
    /// In a replay: the archived journal read instead of the handler.
    pub(crate) archive: Option<std::path::PathBuf>,
    /// The archived journal being replayed, read a batch at a time.
    pub(crate) archived: Option<crate::journal::disk::JournalStream<crate::event::Envelope<T>>>,
}

impl<T: Payload, S> SourceBody<T, S> {
    pub(crate) fn new(handler: S, output: Output<T>, archive: Option<std::path::PathBuf>) -> Self {
        SourceBody {
            handler,
            output,
            archive,
            archived: None,
        }
    }
}

pub(crate) enum SourceWork<T> {
    Stopped,
    Polled(Result<Poll<T>, StageError>),
    Replayed(Result<Vec<Body<T>>, StageFailure>),
}

impl<T: Payload, S> SourceBody<T, S> {
    /// The next batch of archived entries (empty at the end), streaming the
    /// archive so that replaying holds a few batches of it, not all of it.
    fn replayed(&mut self) -> Result<Vec<Body<T>>, StageFailure> {
        let cannot = |error: crate::journal::DiskJournalError| {
            StageFailure::Journal(crate::journal::JournalFailure::from(&error))
        };
        let archived = match (&mut self.archived, &self.archive) {
            (Some(archived), _) => archived,
            (None, Some(archive)) => self
                .archived
                .insert(crate::journal::disk::stream_journal::<T>(archive, 1024).map_err(cannot)?),
            (None, None) => return Ok(Vec::new()),
        };
        for records in archived.by_ref() {
            let bodies: Vec<Body<T>> = records
                .map_err(cannot)?
                .into_iter()
                .map(|record| record.body)
                // Positions are kept, so that the replay's journal holds
                // the same entries at the same places as the archive's.
                .filter(|body| {
                    !matches!(body, Body::Control(control) if !matches!(control, Control::Position(_)))
                })
                .collect();
            if !bodies.is_empty() {
                return Ok(bodies);
            }
        }
        Ok(Vec::new())
    }
}

impl<T: Payload, S: Source<T>> SourceBody<T, S> {
    /// Journals where the handler has read up to, if it says.
    fn mark_position(&mut self) {
        if let Some(position) = self.handler.position() {
            self.output
                .writer
                .push(Parents::None, Body::Control(Control::Position(position)));
        }
    }
}

impl<T: Payload, S: Source<T>> StageBody for SourceBody<T, S> {
    type Work = SourceWork<T>;

    async fn wait(&mut self) -> Self::Work {
        if self.output.stopped {
            SourceWork::Stopped
        } else if self.archive.is_some() {
            SourceWork::Replayed(self.replayed())
        } else {
            SourceWork::Polled(self.handler.next().await)
        }
    }

    async fn work(&mut self, work: Self::Work) -> Result<Step, StageFailure> {
        let started = StdInstant::now();
        let step = match work {
            SourceWork::Stopped | SourceWork::Polled(Ok(Poll::End)) => Step::Done,
            SourceWork::Polled(Ok(Poll::Events(events))) => {
                let count = events.len() as u64;
                self.output.writer.push_all(None, events);
                self.mark_position();
                self.output.busy_since(started, count);
                self.output.flush(count).await?;
                Step::Continue
            }
            SourceWork::Polled(Err(error)) => {
                self.output.failed(error, None)?;
                self.mark_position();
                self.output.busy_since(started, 0);
                self.output.flush(0).await?;
                Step::Continue
            }
            SourceWork::Replayed(Err(failure)) => return Err(failure),
            SourceWork::Replayed(Ok(bodies)) if bodies.is_empty() => Step::Done,
            SourceWork::Replayed(Ok(bodies)) => {
                let mut count = 0;
                for body in bodies {
                    match body {
                        Body::Data(event) => {
                            count += 1;
                            self.output.emit(Parents::None, event);
                        }
                        Body::Error(record) => {
                            self.output.errors.push((*record).clone());
                            StageCounters::add(&self.output.counters.errors, 1);
                            self.output.writer.push(Parents::None, Body::Error(record));
                        }
                        Body::Control(Control::Position(position)) => {
                            self.output
                                .writer
                                .push(Parents::None, Body::Control(Control::Position(position)));
                        }
                        Body::Control(_) | Body::Snapshot(_) => {}
                    }
                }
                self.output.busy_since(started, count);
                self.output.flush(count).await?;
                Step::Continue
            }
        };
        Ok(step)
    }

    fn cut_short(&self) -> bool {
        self.output.stopped
    }

    async fn finish(&mut self) -> Result<(), StageFailure> {
        self.output.write_eof().await
    }

    fn stop_producing(&mut self) {
        self.output.stopped = true;
    }
}
