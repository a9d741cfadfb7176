//! The pure ledger core: which task is where, driven by `on_*` transitions.
//!
//! No I/O, no async, no clock: every transition takes `now` and returns the [`LedgerEvent`]s the
//! async layer acts on (the SQLite store records them; the service logs them). Tests drive it
//! directly (see `tests` below).

mod state;
#[cfg(test)]
mod tests;

pub use state::{AttemptOutcome, Counts, LedgerEvent, Pull, TaskState};

use crate::ids::{AttemptId, TaskIdx, WorkerId};
use apparate::sweep::TaskKey;
use std::collections::{HashMap, HashSet, VecDeque};
use std::time::{Duration, Instant};

/// Limits of a ledger.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LedgerConfig {
    /// How long a lease lasts after its last renewal.
    pub lease: Duration,
    /// Attempts of a task that count toward the limit (lost workers, retryable failures)
    /// before it fails for good.
    pub max_attempts: u32,
    /// A worker whose tasks fail this many times in a row (counted failures) gets no more tasks.
    pub max_failures_in_row: u32,
}

/// Why a call from a worker was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LedgerError {
    /// The worker id is not registered (e.g. the coordinator restarted).
    #[error("unknown worker {worker}")]
    UnknownWorker {
        /// The id.
        worker: WorkerId,
    },
    /// The attempt is not the current lease of any task held by this worker: it expired,
    /// was handed back or superseded, or finished. Never accept its result.
    #[error("attempt {attempt} is not current ({why})")]
    NotCurrent {
        /// The attempt.
        attempt: AttemptId,
        /// What happened to it.
        why: String,
    },
}

#[derive(Debug)]
struct Task {
    key: TaskKey,
    state: TaskState,
    /// Attempts that count toward `max_attempts`.
    counted: u32,
    /// Leased only to a worker with a GPU (a live run on `device = "cuda"`).
    gpu_only: bool,
}

#[derive(Debug)]
struct Worker {
    host: String,
    /// Registered with `--gpu`: may take [`Ledger::require_gpu`] tasks.
    gpu: bool,
    failures_in_row: u32,
    blocked: bool,
}

/// The ledger: every task's state, the registered workers and the leases.
#[derive(Debug)]
pub struct Ledger {
    config: LedgerConfig,
    tasks: Vec<Task>,
    pending: VecDeque<TaskIdx>,
    /// Current attempts → task index (exactly the `Leased` tasks).
    leased: HashMap<AttemptId, TaskIdx>,
    workers: HashMap<WorkerId, Worker>,
    /// Current attempts whose result is being committed: their leases do not expire.
    committing: HashSet<AttemptId>,
    next_attempt: AttemptId,
    next_worker: WorkerId,
    finished_reported: bool,
}

impl Ledger {
    /// A ledger over `tasks` (key, already complete) in grid order; ids start at the given
    /// values (after those a previous run recorded, so ids are never reused).
    pub fn new(
        config: LedgerConfig,
        tasks: impl IntoIterator<Item = (TaskKey, bool)>,
        first_attempt: AttemptId,
        first_worker: WorkerId,
    ) -> Ledger {
        let mut pending = VecDeque::new();
        let tasks: Vec<Task> = tasks
            .into_iter()
            .enumerate()
            .map(|(i, (key, complete))| {
                let state = if complete {
                    TaskState::Done { attempt: None }
                } else {
                    pending.push_back(TaskIdx::new(i));
                    TaskState::Pending
                };
                Task {
                    key,
                    state,
                    counted: 0,
                    gpu_only: false,
                }
            })
            .collect();
        Ledger {
            config,
            tasks,
            pending,
            leased: HashMap::new(),
            workers: HashMap::new(),
            committing: HashSet::new(),
            next_attempt: first_attempt,
            next_worker: first_worker,
            finished_reported: false,
        }
    }

    /// The limits.
    pub fn config(&self) -> &LedgerConfig {
        &self.config
    }

    /// Task `task`'s key.
    pub fn key(&self, task: TaskIdx) -> Option<&TaskKey> {
        self.tasks.get(task.get()).map(|t| &t.key)
    }

    /// Task `task`'s state.
    pub fn state(&self, task: TaskIdx) -> Option<&TaskState> {
        self.tasks.get(task.get()).map(|t| &t.state)
    }

    /// Number of tasks.
    pub fn len(&self) -> usize {
        self.tasks.len()
    }

    /// Whether there are no tasks.
    pub fn is_empty(&self) -> bool {
        self.tasks.is_empty()
    }

    /// Tasks per state.
    pub fn counts(&self) -> Counts {
        let mut c = Counts::default();
        for t in &self.tasks {
            match t.state {
                TaskState::Pending => c.pending += 1,
                TaskState::Leased { .. } => c.leased += 1,
                TaskState::Done { .. } => c.done += 1,
                TaskState::Failed { .. } => c.failed += 1,
            }
        }
        c
    }

    /// Every task is done or has failed for good.
    pub fn is_finished(&self) -> bool {
        self.pending.is_empty() && self.leased.is_empty()
    }

    /// The host a worker registered from.
    pub fn worker_host(&self, worker: WorkerId) -> Option<&str> {
        self.workers.get(&worker).map(|w| w.host.as_str())
    }

    /// A worker without a GPU registers.
    pub fn on_register(&mut self, host: &str) -> WorkerId {
        self.on_register_with(host, false)
    }

    /// A worker registers; `gpu`: it was started with `--gpu` (it may take the tasks of
    /// [`Ledger::require_gpu`]).
    pub fn on_register_with(&mut self, host: &str, gpu: bool) -> WorkerId {
        let id = self.next_worker;
        self.next_worker = id.next();
        self.workers.insert(
            id,
            Worker {
                host: host.to_string(),
                gpu,
                failures_in_row: 0,
                blocked: false,
            },
        );
        id
    }

    /// Task `task` is leased only to workers registered with a GPU (a live run that asks for
    /// `device = "cuda"`); other workers pass it by. Until one registers it waits, pending
    /// ([`Ledger::waiting_for_gpu`]), and the sweep does not finish.
    pub fn require_gpu(&mut self, task: TaskIdx) {
        if let Some(t) = self.tasks.get_mut(task.get()) {
            t.gpu_only = true;
        }
    }

    /// Pending tasks that only a GPU worker may take.
    pub fn waiting_for_gpu(&self) -> usize {
        self.pending
            .iter()
            .filter(|t| self.tasks[t.get()].gpu_only)
            .count()
    }

    /// Registered workers with a GPU.
    pub fn gpu_workers(&self) -> usize {
        self.workers.values().filter(|w| w.gpu).count()
    }

    fn worker_mut(&mut self, worker: WorkerId) -> Result<&mut Worker, LedgerError> {
        self.workers
            .get_mut(&worker)
            .ok_or(LedgerError::UnknownWorker { worker })
    }

    /// A worker asks for a task.
    pub fn on_pull(
        &mut self,
        worker: WorkerId,
        now: Instant,
    ) -> Result<(Pull, Vec<LedgerEvent>), LedgerError> {
        let lease = self.config.lease;
        let w = self.worker_mut(worker)?;
        if w.blocked {
            let n = w.failures_in_row;
            return Ok((
                Pull::Wait {
                    blocked: Some(format!(
                        "worker {worker} gets no more tasks: its last {n} tasks failed"
                    )),
                },
                Vec::new(),
            ));
        }
        // The first pending task this worker may take (a worker without a GPU passes the
        // tasks that need one by, leaving them in their place).
        let gpu = w.gpu;
        let tasks = &self.tasks;
        let next = if gpu {
            self.pending.pop_front()
        } else {
            self.pending
                .iter()
                .position(|t| !tasks[t.get()].gpu_only)
                .and_then(|i| self.pending.remove(i))
        };
        let Some(task) = next else {
            let pull = if self.is_finished() {
                Pull::Finished
            } else {
                Pull::Wait { blocked: None }
            };
            return Ok((pull, Vec::new()));
        };
        let attempt = self.next_attempt;
        self.next_attempt = attempt.next();
        self.tasks[task.get()].state = TaskState::Leased {
            worker,
            attempt,
            expires_at: now + lease,
        };
        self.leased.insert(attempt, task);
        Ok((
            Pull::Lease { task, attempt },
            vec![LedgerEvent::Leased {
                task,
                worker,
                attempt,
            }],
        ))
    }

    /// The task of `attempt` if it is the current lease of `worker`.
    pub fn current(&self, worker: WorkerId, attempt: AttemptId) -> Result<TaskIdx, LedgerError> {
        if !self.workers.contains_key(&worker) {
            return Err(LedgerError::UnknownWorker { worker });
        }
        let not_current = |why: &str| LedgerError::NotCurrent {
            attempt,
            why: why.to_string(),
        };
        let Some(&task) = self.leased.get(&attempt) else {
            return Err(not_current(
                "expired, handed back, superseded or already finished",
            ));
        };
        match self.tasks[task.get()].state {
            TaskState::Leased { worker: w, .. } if w == worker => Ok(task),
            _ => Err(not_current("leased to another worker")),
        }
    }

    /// A worker renews the leases of the attempts it holds; returns those that are no longer
    /// current (the worker drops them).
    pub fn on_heartbeat(
        &mut self,
        worker: WorkerId,
        held: &[AttemptId],
        now: Instant,
    ) -> Result<Vec<AttemptId>, LedgerError> {
        self.worker_mut(worker)?;
        let mut revoked = Vec::new();
        for &attempt in held {
            match self.current(worker, attempt) {
                Ok(task) => {
                    if let TaskState::Leased { expires_at, .. } = &mut self.tasks[task.get()].state
                    {
                        *expires_at = now + self.config.lease;
                    }
                }
                Err(_) => revoked.push(attempt),
            }
        }
        Ok(revoked)
    }

    fn end_attempt(&mut self, attempt: AttemptId) {
        self.leased.remove(&attempt);
        self.committing.remove(&attempt);
    }

    /// The current attempt's result arrived complete and checked; the caller now writes it
    /// into the results directory (outside any lock). Until [`Ledger::on_result`] or
    /// [`Ledger::on_commit_abort`], the lease cannot expire, so no other attempt can start.
    pub fn on_commit_start(
        &mut self,
        worker: WorkerId,
        attempt: AttemptId,
    ) -> Result<TaskIdx, LedgerError> {
        let task = self.current(worker, attempt)?;
        self.committing.insert(attempt);
        Ok(task)
    }

    /// Writing the result failed: the lease runs again (and expires as usual).
    pub fn on_commit_abort(&mut self, attempt: AttemptId, now: Instant) {
        if self.committing.remove(&attempt) {
            if let Some(&task) = self.leased.get(&attempt) {
                if let TaskState::Leased { expires_at, .. } = &mut self.tasks[task.get()].state {
                    *expires_at = now + self.config.lease;
                }
            }
        }
    }

    fn finished_event(&mut self, events: &mut Vec<LedgerEvent>) {
        if !self.finished_reported && self.is_finished() {
            self.finished_reported = true;
            events.push(LedgerEvent::SweepFinished);
        }
    }

    /// The current attempt's result was received, checked and committed: the task is done.
    pub fn on_result(
        &mut self,
        worker: WorkerId,
        attempt: AttemptId,
    ) -> Result<Vec<LedgerEvent>, LedgerError> {
        let task = self.current(worker, attempt)?;
        self.end_attempt(attempt);
        self.tasks[task.get()].state = TaskState::Done {
            attempt: Some(attempt),
        };
        self.worker_mut(worker)?.failures_in_row = 0;
        let mut events = vec![
            LedgerEvent::AttemptEnded {
                task,
                attempt,
                outcome: AttemptOutcome::Succeeded,
            },
            LedgerEvent::TaskDone {
                task,
                worker,
                attempt,
            },
        ];
        self.finished_event(&mut events);
        Ok(events)
    }

    /// The current attempt failed. A failure that is not retryable fails the task at once; a
    /// retryable one puts it back unless `max_attempts` counted attempts were used.
    pub fn on_failure(
        &mut self,
        worker: WorkerId,
        attempt: AttemptId,
        retryable: bool,
        counts_toward_limit: bool,
        message: &str,
    ) -> Result<Vec<LedgerEvent>, LedgerError> {
        let task = self.current(worker, attempt)?;
        self.end_attempt(attempt);
        let mut events = vec![LedgerEvent::AttemptEnded {
            task,
            attempt,
            outcome: AttemptOutcome::Failed {
                message: message.to_string(),
            },
        }];
        if counts_toward_limit {
            self.tasks[task.get()].counted += 1;
            let max = self.config.max_failures_in_row;
            let w = self.worker_mut(worker)?;
            w.failures_in_row += 1;
            if w.failures_in_row >= max && !w.blocked {
                w.blocked = true;
                let failures = w.failures_in_row;
                events.push(LedgerEvent::WorkerBlocked { worker, failures });
            }
        }
        let counted = self.tasks[task.get()].counted;
        if !retryable {
            self.fail_task(task, message.to_string(), &mut events);
        } else if counted >= self.config.max_attempts {
            self.fail_task(
                task,
                format!("{counted} attempts failed, the last with: {message}"),
                &mut events,
            );
        } else {
            self.requeue(task, &mut events);
        }
        self.finished_event(&mut events);
        Ok(events)
    }

    /// The worker hands the lease back unfinished (clean shutdown): no attempt is counted.
    pub fn on_return(
        &mut self,
        worker: WorkerId,
        attempt: AttemptId,
    ) -> Result<Vec<LedgerEvent>, LedgerError> {
        let task = self.current(worker, attempt)?;
        self.end_attempt(attempt);
        let mut events = vec![LedgerEvent::AttemptEnded {
            task,
            attempt,
            outcome: AttemptOutcome::Returned,
        }];
        self.requeue(task, &mut events);
        Ok(events)
    }

    /// Expires every lease not renewed by `now`: the task goes back (front of the queue), or
    /// fails for good after `max_attempts` counted attempts.
    pub fn on_tick(&mut self, now: Instant) -> Vec<LedgerEvent> {
        let mut expired: Vec<(AttemptId, TaskIdx)> = self
            .leased
            .iter()
            .filter(|(a, &t)| {
                !self.committing.contains(a)
                    && matches!(self.tasks[t.get()].state, TaskState::Leased { expires_at, .. } if expires_at <= now)
            })
            .map(|(&a, &t)| (a, t))
            .collect();
        expired.sort();
        let mut events = Vec::new();
        for (attempt, task) in expired {
            self.end_attempt(attempt);
            events.push(LedgerEvent::AttemptEnded {
                task,
                attempt,
                outcome: AttemptOutcome::Expired,
            });
            self.tasks[task.get()].counted += 1;
            let counted = self.tasks[task.get()].counted;
            if counted >= self.config.max_attempts {
                self.fail_task(
                    task,
                    format!("lost its worker {counted} times (lease expired); giving up"),
                    &mut events,
                );
            } else {
                self.requeue(task, &mut events);
            }
        }
        self.finished_event(&mut events);
        events
    }

    fn requeue(&mut self, task: TaskIdx, events: &mut Vec<LedgerEvent>) {
        self.tasks[task.get()].state = TaskState::Pending;
        self.pending.push_front(task);
        events.push(LedgerEvent::TaskReady { task });
    }

    fn fail_task(&mut self, task: TaskIdx, reason: String, events: &mut Vec<LedgerEvent>) {
        let attempts = self.tasks[task.get()].counted;
        self.tasks[task.get()].state = TaskState::Failed {
            reason: reason.clone(),
            attempts,
        };
        events.push(LedgerEvent::TaskFailed { task, reason });
    }

    /// Checks the ledger's internal consistency (tests call it after every scenario).
    pub fn sanity_check(&self) {
        let mut leased = 0;
        for (i, t) in self.tasks.iter().enumerate() {
            let i = TaskIdx::new(i);
            match t.state {
                TaskState::Pending => assert!(self.pending.contains(&i), "{i} pending not queued"),
                TaskState::Leased {
                    attempt, worker, ..
                } => {
                    leased += 1;
                    assert_eq!(self.leased.get(&attempt), Some(&i));
                    assert!(self.workers.contains_key(&worker));
                    assert!(!self.pending.contains(&i));
                }
                TaskState::Done { .. } | TaskState::Failed { .. } => {
                    assert!(!self.pending.contains(&i), "{i} finished but queued")
                }
            }
        }
        assert_eq!(leased, self.leased.len());
        assert_eq!(
            self.pending.len(),
            self.tasks
                .iter()
                .filter(|t| matches!(t.state, TaskState::Pending))
                .count()
        );
    }
}
