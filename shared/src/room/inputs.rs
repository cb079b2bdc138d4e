//! One client's input schedule in a room: each sequence number is one tick, frames wait for
//! their tick, a frame that comes after its tick is replaced by the previous input, and the
//! room reports how early frames arrive so the client can steer its lead (time sync).
//!
//! The first frame received is mapped to a tick shortly after the next one the room runs
//! ([`ANCHOR_LEAD_TICKS`]; the *anchor*); every
//! later sequence number `s` belongs to tick `anchor_tick + (s - anchor_seq)`. Because the
//! mapping never shifts, a late frame costs only its own tick: the room repeats the previous
//! input there ([`Game::repeat_input`]) and the frames after it keep their ticks, so a client
//! holding the same keys predicted exactly what the server ran. A client runs ahead of the
//! server by sending its frames earlier (the room keeps them until their tick, at most
//! [`MAX_INPUT_LEAD_TICKS`] ahead), and skips sequence numbers to jump ahead.

use std::collections::VecDeque;

use crate::game::Game;
use crate::protocol::ViewTime;
use crate::tick::{Tick, seq_after};

/// How many ticks ahead of the room a frame may arrive and still be kept (64 ticks: over a
/// second at 60 Hz, more than any client's lead of half a round trip plus jitter needs). Frames
/// further ahead are dropped (a broken or hostile clock), which bounds the schedule to this many
/// frames per client.
pub const MAX_INPUT_LEAD_TICKS: i32 = 64;

/// A client whose frames stop for more than this many ticks is silent (a hidden tab, a stall),
/// not running late by jitter: the schedule stops (the echo goes back to its last frame) and
/// its next frame is scheduled like a first one; so is a frame arriving this late. 30 ticks are
/// half a second at 60 Hz, beyond a TCP retransmission's 200 ms delay.
pub const REANCHOR_LATE_TICKS: i32 = 30;

/// A first frame (or one that restarts the schedule) runs this many ticks after the next tick:
/// the frames behind it then have two ticks (33 ms at 60 Hz) of jitter to spare before the
/// client's time sync has measured the link and set its own lead.
pub const ANCHOR_LEAD_TICKS: u32 = 2;

/// Ticks in a row in which a client's messages came with every new frame late before its
/// schedule restarts (see `InputQueue::follow_late_streak`): four, so a client that paused
/// loses at most three frames after the pause, and a retransmitted burst (delivered at once,
/// drained in one tick or split over two) never counts.
pub const LATE_STREAK_TICKS: u32 = 4;

/// Input arrival stamps kept per client between two snapshots, for the input-to-snapshot
/// latency measurement; beyond it the newest are not measured, so the list stays bounded.
pub const MAX_TRACKED_ARRIVALS: usize = 16;

/// When a message reached the room, against its tick schedule.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Arrival {
    /// The driver's stamp (its clock, microseconds; handed back for the latency metric).
    pub(crate) stamp: u64,
    /// The next tick the room runs.
    pub(crate) next: Tick,
    /// Microseconds from the arrival to when that tick is due, if the driver said when
    /// ([`super::RoomCore::set_next_tick_at`]; negative: the tick is running late).
    pub(crate) early_us: Option<i64>,
    /// Microseconds per tick.
    pub(crate) tick_us: i64,
}

/// A scheduled frame: sequence number, frame, arrival stamp (the driver's clock, opaque here),
/// the moment its client was showing when it made it.
type PendingFrame<I> = (u32, I, u64, Option<ViewTime>);

/// What a client's frames do in the room.
pub(crate) struct InputQueue<I> {
    /// Frames waiting for their tick, ascending by sequence number (at most
    /// [`MAX_INPUT_LEAD_TICKS`] + 1).
    pending: VecDeque<PendingFrame<I>>,
    /// Sequence number `anchor.0` runs at tick `anchor.1`.
    anchor: Option<(u32, Tick)>,
    /// The newest sequence number received (anything not after it was seen already).
    newest: Option<u32>,
    /// The slot of the last tick run (echoed in snapshots).
    last_slot: Option<u32>,
    /// Input ticks run late so far (wrapping): a tick with no frame once the client had sent
    /// one (late, lost or dropped for being too far ahead).
    pub(crate) late: u32,
    /// One-shot actions of frames that came after their tick, for the next tick run.
    carry: Option<I>,
    /// The input of the current tick.
    pub(crate) current: I,
    /// The moment its client was showing when it made [`InputQueue::current`] (a repeated
    /// input keeps the last frame's distance behind its tick).
    pub(crate) current_view: Option<ViewTime>,
    /// The smallest margin (microseconds before its tick is due) of the frames first received
    /// since the last report.
    margin_us: Option<i64>,
    /// The last tick in which a message came whose new frames were all late, and for how
    /// many ticks in a row that has happened.
    late_streak: (Option<Tick>, u32),
    /// When each input applied since the last snapshot arrived (bounded by
    /// [`MAX_TRACKED_ARRIVALS`]).
    pub(crate) unreported_arrivals: Vec<u64>,
}

impl<I: Copy + Default> InputQueue<I> {
    pub(crate) fn new() -> InputQueue<I> {
        InputQueue {
            pending: VecDeque::new(),
            anchor: None,
            newest: None,
            last_slot: None,
            late: 0,
            carry: None,
            current: I::default(),
            current_view: None,
            margin_us: None,
            late_streak: (None, 0),
            unreported_arrivals: Vec::new(),
        }
    }

    /// The tick sequence number `seq` runs at.
    fn slot_tick(&self, seq: u32) -> Option<Tick> {
        let (anchor_seq, anchor_tick) = self.anchor?;
        Some(anchor_tick.plus(seq.wrapping_sub(anchor_seq)))
    }

    /// Schedules the frames of one message of game `G` whose first frame is `first_seq`,
    /// received at `at`, its newest frame made while the client showed `view` (each older one
    /// a tick before); frames seen before are ignored. Returns how many frames were dropped
    /// for being too far ahead.
    pub(crate) fn push<G: Game<Input = I>>(
        &mut self,
        first_seq: u32,
        frames: &[I],
        view: Option<ViewTime>,
        at: Arrival,
    ) -> u64 {
        let count = frames.len() as u32;
        let (arrived, next) = (at.stamp, at.next);
        self.follow_late_streak(first_seq, frames.len(), next);
        let mut dropped = 0;
        for (i, (seq, frame)) in (0u32..).map(|i| first_seq.wrapping_add(i)).zip(frames).enumerate()
        {
            let view = view
                .map(|v| ViewTime { tick: Tick(v.tick.0.wrapping_sub(count - 1 - i as u32)), ..v });
            if self.newest.is_some_and(|newest| !seq_after(seq, newest)) {
                continue;
            }
            self.newest = Some(seq);
            let mut margin = self.slot_tick(seq).map_or(0, |slot| slot.diff(next));
            if self.anchor.is_none() || margin < -REANCHOR_LATE_TICKS {
                // A first frame, or a client back from a stall: it runs shortly, and every
                // slot before it is done with.
                self.anchor = Some((seq, next.plus(ANCHOR_LEAD_TICKS)));
                if self.last_slot.is_some() {
                    self.last_slot = Some(seq.wrapping_sub(1));
                }
                self.pending.clear();
                margin = ANCHOR_LEAD_TICKS as i32;
            }
            let margin_us = i64::from(margin) * at.tick_us + at.early_us.unwrap_or(0);
            self.margin_us = Some(self.margin_us.map_or(margin_us, |m| m.min(margin_us)));
            if margin < 0 {
                // Its tick ran with the previous input: keep only its one-shot actions.
                self.carry = Some(match self.carry {
                    None => *frame,
                    Some(mut carry) => {
                        G::merge_skipped(frame, &mut carry);
                        carry
                    }
                });
            } else if margin > MAX_INPUT_LEAD_TICKS {
                dropped += 1;
            } else {
                self.pending.push_back((seq, *frame, arrived, view));
            }
        }
        dropped
    }

    /// A client whose messages come with every new frame late, in [`LATE_STREAK_TICKS`] ticks
    /// in a row, is behind the schedule as a whole (it paused, it keeps no time sync): its
    /// schedule restarts at this message's first new frame, which then runs shortly. One burst
    /// of late messages in a single tick (a TCP retransmission's) is not a streak.
    fn follow_late_streak(&mut self, first_seq: u32, count: usize, next: Tick) {
        let Some(more) = count.checked_sub(1) else { return };
        let last = first_seq.wrapping_add(more as u32);
        if self.newest.is_some_and(|newest| !seq_after(last, newest)) {
            return; // Nothing new: a redundant copy says nothing of the schedule.
        }
        if !self.slot_tick(last).is_some_and(|slot| next.is_after(slot)) {
            self.late_streak = (None, 0);
            return;
        }
        if self.late_streak.0 != Some(next) {
            self.late_streak = (Some(next), self.late_streak.1 + 1);
        }
        if self.late_streak.1 >= LATE_STREAK_TICKS {
            self.late_streak = (None, 0);
            let first_new = self.newest.map_or(first_seq, |n| n.wrapping_add(1));
            let first_new = if seq_after(first_seq, first_new) { first_seq } else { first_new };
            self.anchor = Some((first_new, next.plus(ANCHOR_LEAD_TICKS)));
            // Every slot before it is done with (its frame dropped as late), none after it is.
            self.last_slot = Some(first_new.wrapping_sub(1));
            self.pending.clear();
        }
    }

    /// Takes the input of tick `now` (about to run) into [`InputQueue::current`]: its frame, or
    /// [`Game::repeat_input`] of the last input when none arrived in time (counted late once
    /// the client has sent a frame). One-shot actions of late frames are folded in.
    pub(crate) fn advance<G: Game<Input = I>>(&mut self, now: Tick) {
        let Some((anchor_seq, anchor_tick)) = self.anchor.filter(|&(_, t)| !t.is_after(now)) else {
            // No frame yet, or the first one's tick is still to come: late, unless the client
            // has never had a frame run (its prediction starts from this standing state).
            self.current = G::repeat_input(&self.current);
            self.current_view = next_tick(self.current_view);
            if self.anchor.is_some() && self.last_slot.is_some() {
                self.late = self.late.wrapping_add(1);
            }
            return;
        };
        let slot = anchor_seq.wrapping_add(now.diff(anchor_tick) as u32);
        if self.newest.is_some_and(|newest| slot.wrapping_sub(newest) as i32 > REANCHOR_LATE_TICKS)
        {
            // Silence: the client stopped sending. Its player stops (the default input, as
            // for a disconnected one), the echo goes back to the last frame it sent (so its
            // next frames are not taken as run), and its next frame is scheduled like a first
            // one: from a standing start, which is what its prediction starts from.
            self.anchor = None;
            self.last_slot = self.newest;
            self.pending.clear();
            self.current = I::default();
            self.current_view = None;
            return;
        }
        while self.pending.front().is_some_and(|&(seq, ..)| seq_after(slot, seq)) {
            self.pending.pop_front();
        }
        match self.pending.front() {
            Some(&(seq, frame, arrived, view)) if seq == slot => {
                self.pending.pop_front();
                self.current = frame;
                self.current_view = view;
                if self.unreported_arrivals.len() < MAX_TRACKED_ARRIVALS {
                    self.unreported_arrivals.push(arrived);
                }
            }
            _ => {
                self.current = G::repeat_input(&self.current);
                self.current_view = next_tick(self.current_view);
                self.late = self.late.wrapping_add(1);
            }
        }
        if let Some(carry) = self.carry.take() {
            G::merge_skipped(&carry, &mut self.current);
        }
        self.last_slot = Some(slot);
    }

    /// The echo for snapshots ([`crate::protocol::SnapshotMessage::last_input_seq`]): the slot
    /// of the last tick run, whether its frame came or not (the state reflects that slot, so
    /// the client must not replay its frame on top).
    /// Frames waiting for their tick.
    pub(crate) fn buffered(&self) -> usize {
        self.pending.len()
    }

    pub(crate) fn echo(&self) -> Option<u32> {
        self.last_slot
    }

    /// The time-sync report for the next snapshot, in milliseconds
    /// ([`crate::protocol::SnapshotMessage::input_margin`]), reset.
    pub(crate) fn take_margin(&mut self) -> Option<i16> {
        let us = self.margin_us.take()?;
        Some(i16::try_from(us.div_euclid(1_000)).unwrap_or(if us < 0 {
            i16::MIN
        } else {
            i16::MAX
        }))
    }
}

/// The same moment a tick later: a repeated input stays as far behind its tick as the last.
fn next_tick(view: Option<ViewTime>) -> Option<ViewTime> {
    view.map(|v| ViewTime { tick: v.tick.next(), ..v })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::games::arena::{ArenaGame, ArenaInput, Buttons};

    /// Arrived with stamp `stamp` 5 ms before tick `next` is due (ticks of 10 ms).
    fn at(stamp: u64, next: Tick) -> Arrival {
        Arrival { stamp, next, early_us: Some(5_000), tick_us: 10_000 }
    }

    /// The report of a frame whose tick is `ticks` after `next`, in ms.
    fn ms(ticks: i16) -> Option<i16> {
        Some(ticks * 10 + 5)
    }

    fn f(x: i8) -> ArenaInput {
        ArenaInput { movement: [x, 0], ..ArenaInput::default() }
    }

    /// Runs tick `t`, returns its input.
    fn run(q: &mut InputQueue<ArenaInput>, t: u32) -> ArenaInput {
        q.advance::<ArenaGame>(Tick(t));
        q.current
    }

    #[test]
    fn the_first_frame_runs_shortly_and_each_number_keeps_its_tick() {
        let mut q = InputQueue::<ArenaInput>::new();
        assert_eq!(run(&mut q, 99), ArenaInput::default());
        assert_eq!(q.late, 0, "no frame sent yet: nothing is late");
        // Frames 10..=12 arrive before tick 100: 10 runs at 102, 11 at 103, 12 at 104.
        q.push::<ArenaGame>(10, &[f(1), f(2), f(3)], None, at(0, Tick(100)));
        assert_eq!(q.take_margin(), ms(ANCHOR_LEAD_TICKS as i16));
        assert_eq!(run(&mut q, 100), ArenaInput::default());
        assert_eq!(run(&mut q, 101), ArenaInput::default());
        assert_eq!((q.echo(), q.late), (None, 0), "before the first frame's tick");
        assert_eq!(run(&mut q, 102), f(1));
        // A redundant copy of 11 and 12 changes nothing.
        q.push::<ArenaGame>(11, &[f(2), f(3)], None, at(0, Tick(103)));
        assert_eq!(q.take_margin(), None, "no new frame, no report");
        assert_eq!(run(&mut q, 103), f(2));
        assert_eq!(run(&mut q, 104), f(3));
        assert_eq!((q.echo(), q.late), (Some(12), 0));
    }

    /// A queue whose frame 0 ran at tick 0.
    fn started() -> InputQueue<ArenaInput> {
        let mut q = InputQueue::<ArenaInput>::new();
        let lead = ANCHOR_LEAD_TICKS;
        q.push::<ArenaGame>(0, &[f(1)], None, at(0, Tick(0u32.wrapping_sub(lead))));
        assert_eq!(run(&mut q, 0), f(1));
        q.take_margin();
        q
    }

    #[test]
    fn a_late_frame_costs_only_its_own_tick_and_keeps_its_shot() {
        let mut q = started();
        // Frame 1 (a shot) misses tick 1: the last input is repeated there, counted late.
        assert_eq!(run(&mut q, 1), f(1));
        assert_eq!(q.late, 1);
        assert_eq!(q.echo(), Some(1), "slot 1 ran, without its frame");
        let shot = ArenaInput { buttons: Buttons::FIRE, ..f(2) };
        q.push::<ArenaGame>(1, &[shot, f(3)], None, at(0, Tick(2)));
        assert_eq!(q.take_margin(), ms(-1), "frame 1 came a tick after its tick");
        // Frame 2 still runs at tick 2 (no shift), with frame 1's shot folded in.
        let t2 = run(&mut q, 2);
        assert_eq!(t2.movement, f(3).movement, "frame 2 keeps its tick");
        assert!(t2.buttons.contains(Buttons::FIRE), "the late frame's shot was lost");
        assert_eq!(q.echo(), Some(2));
        assert!(!run(&mut q, 3).buttons.contains(Buttons::FIRE), "the shot fires once");
        assert_eq!(q.late, 2, "tick 3 had no frame either");
    }

    #[test]
    fn frames_sent_ahead_wait_for_their_tick_and_the_margin_says_how_early() {
        let mut q = started();
        // The client runs five ticks ahead: frames 1..=5 arrive before tick 1 runs.
        q.push::<ArenaGame>(1, &[f(1), f(2), f(3), f(4), f(5)], None, at(0, Tick(1)));
        assert_eq!(q.take_margin(), ms(0), "the latest-arriving (earliest numbered) frame");
        q.push::<ArenaGame>(6, &[f(6)], None, at(0, Tick(1)));
        assert_eq!(q.take_margin(), ms(5));
        for t in 1..=6 {
            assert_eq!(run(&mut q, t), f(t as i8), "tick {t}");
        }
        assert_eq!(q.late, 0);
    }

    #[test]
    fn frames_too_far_ahead_are_dropped_and_a_long_silence_restarts_the_schedule() {
        let mut q = started();
        let far = MAX_INPUT_LEAD_TICKS as u32 + 2;
        assert_eq!(q.push::<ArenaGame>(far, &[f(1)], None, at(0, Tick(1))), 1, "dropped");
        assert!(q.pending.is_empty(), "the schedule stays bounded");
        // Silence: frame far+1 arrives way after its tick; it is scheduled like a first frame.
        let next = Tick(far + 1 + REANCHOR_LATE_TICKS as u32 + 1);
        q.push::<ArenaGame>(far + 1, &[f(2)], None, at(0, next));
        assert_eq!(q.take_margin(), ms(ANCHOR_LEAD_TICKS as i16));
        assert_eq!(run(&mut q, next.0 + ANCHOR_LEAD_TICKS), f(2));
    }

    #[test]
    fn a_silent_client_is_echoed_its_last_frame_and_starts_afresh() {
        let mut q = started();
        for t in 1..=REANCHOR_LATE_TICKS as u32 {
            run(&mut q, t);
        }
        assert_eq!(q.echo(), Some(REANCHOR_LATE_TICKS as u32), "slots run on for a while");
        let quiet = REANCHOR_LATE_TICKS as u32 + 1;
        assert_eq!(run(&mut q, quiet), ArenaInput::default(), "a silent player stops");
        assert_eq!(q.echo(), Some(0), "then the echo goes back to the last frame sent");
        let late = q.late;
        run(&mut q, quiet + 1);
        assert_eq!((q.echo(), q.late), (Some(0), late), "a silent client is not late");
        // Its next frame (1) runs shortly, like a first one.
        q.push::<ArenaGame>(1, &[f(5)], None, at(0, Tick(quiet + 2)));
        assert_eq!(q.take_margin(), ms(ANCHOR_LEAD_TICKS as i16));
        assert_eq!(run(&mut q, quiet + 2 + ANCHOR_LEAD_TICKS), f(5));
        assert_eq!(q.echo(), Some(1));
    }

    #[test]
    fn a_client_behind_the_schedule_is_rescheduled_but_not_for_one_burst() {
        let mut q = started();
        // A burst of late messages in one tick (a retransmission), then one on time: no restart.
        for seq in 1..=3 {
            q.push::<ArenaGame>(seq, &[f(1)], None, at(0, Tick(20)));
        }
        q.push::<ArenaGame>(25, &[f(2)], None, at(0, Tick(21)));
        assert_eq!(q.slot_tick(26), Some(Tick(26)), "the schedule stands");
        // Then late messages in LATE_STREAK_TICKS ticks in a row: behind as a whole,
        // rescheduled at the last one.
        let streak = LATE_STREAK_TICKS;
        for i in 0..streak - 1 {
            q.push::<ArenaGame>(26 + i, &[f(3)], None, at(0, Tick(40 + i)));
            assert_eq!(q.slot_tick(27 + i), Some(Tick(27 + i)), "not a streak yet");
        }
        let (seq, tick) = (26 + streak - 1, 40 + streak - 1);
        q.push::<ArenaGame>(seq, &[f(4)], None, at(0, Tick(tick)));
        assert_eq!(q.slot_tick(seq), Some(Tick(tick + ANCHOR_LEAD_TICKS)), "restarted");
        assert_eq!(run(&mut q, tick + ANCHOR_LEAD_TICKS), f(4));
    }

    #[test]
    fn the_arrivals_of_applied_frames_are_kept_for_the_latency_metric() {
        let mut q = InputQueue::<ArenaInput>::new();
        q.push::<ArenaGame>(0, &[f(0), f(1)], None, at(7, Tick(0)));
        for t in 0..5 {
            run(&mut q, t);
        }
        assert_eq!(q.unreported_arrivals, vec![7, 7], "one per applied frame, none repeated");
    }

    #[test]
    fn each_frame_keeps_the_view_it_was_made_with_and_a_repeat_keeps_its_lag() {
        let mut q = InputQueue::<ArenaInput>::new();
        let view = |t: u32| Some(ViewTime { tick: Tick(t), frac: 64 });
        // Frames 0..=2, the newest made while the client showed tick 50 and a quarter: the
        // older ones a tick earlier each.
        q.push::<ArenaGame>(0, &[f(0), f(1), f(2)], view(50), at(0, Tick(58)));
        let mut views = Vec::new();
        for t in 60..=63 {
            run(&mut q, t);
            views.push(q.current_view);
        }
        // Tick 63 had no frame: the last input repeated, as far behind its tick as before.
        assert_eq!(views, [view(48), view(49), view(50), view(51)]);
        // Frame 4 (tick 64) made while showing tick 70; a redundant copy does not change
        // what a frame saw first.
        q.push::<ArenaGame>(3, &[f(3), f(4)], view(70), at(0, Tick(64)));
        q.push::<ArenaGame>(4, &[f(4)], view(90), at(0, Tick(64)));
        run(&mut q, 64);
        assert_eq!(q.current_view, view(70));
    }
}
