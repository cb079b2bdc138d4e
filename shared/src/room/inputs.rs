//! One client's input queue in a room: frames numbered by the client, each applied once, in
//! order, at most one a tick, with a bounded backlog and a standing-queue drain.

use std::collections::VecDeque;

use crate::game::Game;

/// Input frames queued per client. A client sends one a tick; a backlog longer than this is
/// latency, so the oldest frames are dropped.
pub const MAX_PENDING_INPUTS: usize = 4;

/// Ticks over which a client's input queue is watched for a standing backlog: when a frame was
/// left waiting after every tick of a window, one frame is skipped to take that tick of latency
/// back out (a burst that drains by itself is never touched).
pub const INPUT_QUEUE_WINDOW_TICKS: u32 = 30;

/// Input arrival stamps kept per client between two snapshots, for the input-to-snapshot
/// latency measurement; beyond it the newest are not measured, so the list stays bounded.
pub const MAX_TRACKED_ARRIVALS: usize = 16;

/// A queued frame: sequence number, frame, arrival stamp (the driver's clock, opaque here).
pub(crate) type PendingFrame<I> = (u32, I, u64);

/// What a client's frames do in the room.
pub(crate) struct InputQueue<I> {
    /// Frames not applied yet, each with when it first reached the server.
    pending: VecDeque<PendingFrame<I>>,
    /// The next sequence number expected (anything before it was seen already).
    next_seq: Option<u32>,
    /// The last sequence number applied (echoed in snapshots).
    pub(crate) last_applied: Option<u32>,
    /// Input ticks run late so far (wrapping): a tick with no frame once the client had sent
    /// one, a frame skipped, a frame dropped from a full queue.
    pub(crate) late: u32,
    /// The input of the current tick.
    pub(crate) current: I,
    /// Ticks into the current watch window, and the shortest queue left after a tick in it.
    window: (u32, usize),
    /// When each input applied since the last snapshot arrived (bounded by
    /// [`MAX_TRACKED_ARRIVALS`]).
    pub(crate) unreported_arrivals: Vec<u64>,
}

impl<I: Copy + Default> InputQueue<I> {
    pub(crate) fn new() -> InputQueue<I> {
        InputQueue {
            pending: VecDeque::with_capacity(MAX_PENDING_INPUTS),
            next_seq: None,
            last_applied: None,
            late: 0,
            current: I::default(),
            window: (0, usize::MAX),
            unreported_arrivals: Vec::new(),
        }
    }

    /// Queues the frames of one message whose first frame is `first_seq`; frames seen before
    /// are ignored. Returns how many frames were dropped from a full queue.
    pub(crate) fn push(&mut self, first_seq: u32, frames: &[I], arrived: u64) -> u64 {
        let mut dropped = 0;
        for (seq, frame) in (0u32..).map(|i| first_seq.wrapping_add(i)).zip(frames) {
            let fresh = self.next_seq.is_none_or(|next| seq.wrapping_sub(next) as i32 >= 0);
            if !fresh {
                continue;
            }
            self.pending.push_back((seq, *frame, arrived));
            self.next_seq = Some(seq.wrapping_add(1));
            if self.pending.len() > MAX_PENDING_INPUTS {
                self.pending.pop_front();
                dropped += 1;
            }
        }
        self.late = self.late.wrapping_add(dropped as u32);
        dropped
    }

    /// Takes this tick's input of game `G` into [`InputQueue::current`]: the next frame, or
    /// [`Game::repeat_input`] of the last one when none arrived in time. Returns whether a
    /// frame was skipped to shorten a standing queue.
    pub(crate) fn advance<G: Game<Input = I>>(&mut self) -> bool {
        let (next, skipped) = next_frame::<G>(&mut self.pending, &mut self.window);
        if skipped || (next.is_none() && self.next_seq.is_some()) {
            self.late = self.late.wrapping_add(1);
        }
        match next {
            Some((seq, frame, arrived)) => {
                self.current = frame;
                self.last_applied = Some(seq);
                if self.unreported_arrivals.len() < MAX_TRACKED_ARRIVALS {
                    self.unreported_arrivals.push(arrived);
                }
            }
            None => self.current = G::repeat_input(&self.current),
        }
        skipped
    }
}

/// This tick's frame from a client's queue. `window` is (ticks into the watch window, shortest
/// queue left after a tick in it); at the end of a window in which a frame was always left
/// waiting, the queue is standing (latency added to every input, not a burst) and this tick
/// takes the following frame instead, folding the skipped one's one-shot actions into it
/// ([`Game::merge_skipped`]: a shot is never lost, only one step of movement) and keeping its
/// arrival time. Returns the frame and whether one was skipped.
pub(crate) fn next_frame<G: Game>(
    pending: &mut VecDeque<PendingFrame<G::Input>>,
    window: &mut (u32, usize),
) -> (Option<PendingFrame<G::Input>>, bool) {
    let mut next = pending.pop_front();
    window.0 += 1;
    window.1 = window.1.min(pending.len());
    let mut skipped = false;
    if window.0 >= INPUT_QUEUE_WINDOW_TICKS {
        if window.1 >= 1
            && let Some((_, dropped, dropped_at)) = next
            && let Some((seq, mut frame, _)) = pending.pop_front()
        {
            G::merge_skipped(&dropped, &mut frame);
            next = Some((seq, frame, dropped_at));
            skipped = true;
        }
        *window = (0, usize::MAX);
    }
    (next, skipped)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::games::arena::{ArenaGame, ArenaInput, Buttons};

    fn frame(buttons: Buttons) -> ArenaInput {
        ArenaInput { movement: [1, 0], aim: 0, buttons }
    }

    #[test]
    fn a_standing_queue_loses_one_frame_per_window_but_never_its_buttons() {
        let mut window = (0, usize::MAX);
        let mut pending: VecDeque<PendingFrame<ArenaInput>> = VecDeque::new();
        // Two frames always waiting behind this tick's; the one due at the window's end fires.
        for seq in 0..3 {
            pending.push_back((seq, frame(Buttons::default()), 7));
        }
        let mut applied = Vec::new();
        for (seq, tick) in (3..).zip(1..=INPUT_QUEUE_WINDOW_TICKS) {
            let due_fires = tick == INPUT_QUEUE_WINDOW_TICKS;
            if due_fires {
                pending[0].1.buttons = Buttons::FIRE;
                pending[0].2 = 1;
            }
            let (next, skipped) = next_frame::<ArenaGame>(&mut pending, &mut window);
            let (s, f, at) = next.unwrap();
            assert_eq!(skipped, due_fires, "tick {tick}");
            applied.push(s);
            if due_fires {
                assert!(f.buttons.contains(Buttons::FIRE), "the skipped frame's shot was lost");
                assert_eq!(at, 1, "the skipped frame's arrival is kept");
            }
            pending.push_back((seq, frame(Buttons::default()), 7));
        }
        // One frame skipped: the queue is one shorter, and the sequence jumped by two once.
        assert_eq!(pending.len(), 2);
        assert_eq!(applied.windows(2).filter(|w| w[1] - w[0] == 2).count(), 1);
        assert!(applied.windows(2).all(|w| w[1] - w[0] <= 2));
    }

    #[test]
    fn a_burst_that_drains_by_itself_is_left_alone() {
        let mut window = (0, usize::MAX);
        let mut pending: VecDeque<PendingFrame<ArenaInput>> = VecDeque::new();
        for seq in 0..3 {
            pending.push_back((seq, frame(Buttons::default()), 0));
        }
        // No new frames for two ticks: the burst drains, then one a tick.
        for tick in 0..(3 * INPUT_QUEUE_WINDOW_TICKS) {
            let (_, skipped) = next_frame::<ArenaGame>(&mut pending, &mut window);
            assert!(!skipped, "tick {tick}");
            if tick >= 2 {
                pending.push_back((tick + 3, frame(Buttons::default()), 0));
            }
        }
    }

    #[test]
    fn ticks_run_late_are_counted_once_the_client_has_sent_a_frame() {
        let mut q = InputQueue::<ArenaInput>::new();
        let f = |x| ArenaInput { movement: [x, 0], ..ArenaInput::default() };
        // Before any frame, an empty tick is not late: the client has not started.
        q.advance::<ArenaGame>();
        assert_eq!(q.late, 0);
        q.push(0, &[f(0)], 0);
        q.advance::<ArenaGame>();
        assert_eq!(q.late, 0, "a frame on time");
        // No frame for this tick: the last one is repeated, late.
        q.advance::<ArenaGame>();
        assert_eq!(q.late, 1);
        // A full queue drops the oldest: each dropped frame is one more.
        q.push(1, &[f(1), f(2), f(3), f(4), f(5), f(6)], 0);
        assert_eq!(q.late, 3);
        // A standing queue loses a frame at the end of a window: one more each.
        let mut skips = 0;
        for seq in 7..7 + 2 * INPUT_QUEUE_WINDOW_TICKS {
            skips += u32::from(q.advance::<ArenaGame>());
            q.push(seq, &[f(1)], 0);
        }
        assert!(skips >= 1, "the standing queue was never shortened");
        assert_eq!(q.late, 3 + skips, "each skipped frame is late");
    }

    #[test]
    fn frames_are_taken_once_in_order_and_a_full_queue_drops_the_oldest() {
        let mut q = InputQueue::<ArenaInput>::new();
        let f = |x| ArenaInput { movement: [x, 0], ..ArenaInput::default() };
        assert_eq!(q.push(0, &[f(0), f(1)], 0), 0);
        // A redundant copy of 1 and a new 2.
        assert_eq!(q.push(1, &[f(1), f(2)], 0), 0);
        assert!(!q.advance::<ArenaGame>());
        assert_eq!((q.last_applied, q.current), (Some(0), f(0)));
        assert_eq!(q.push(3, &[f(3), f(4), f(5), f(6)], 0), 2);
        assert!(!q.advance::<ArenaGame>());
        assert_eq!(q.last_applied, Some(3), "1 and 2 were the oldest of a full queue");
    }
}
