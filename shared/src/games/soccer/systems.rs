//! Soccer's rule systems, in the order [`super::SoccerSet`] runs them: players move, kicks are
//! taken, the ball rolls, and the referee counts goals and restarts play.
//!
//! Every system that resolves contests between entities (who kicks, whom the ball touches)
//! walks them sorted by [`NetId`], so a run is a pure function of the seed and the inputs.

use bevy_ecs::prelude::*;
use glam::Vec2;

use super::ball::{BallBody, Body, can_kick, kick_speed, step_ball};
use super::components::{
    Ball, Facing, FormationSlot, Goals, KickState, MatchScore, Position, Stamina, Team, Toucher,
    Velocity,
};
use super::input::SoccerControl;
use super::movement::{PlayerState, snap_angle, step_player};
use super::pitch::formation_spot;
use super::{Play, Referee, SoccerEvent, SoccerRules};
use crate::game::{GameEvents, SimClock};
use crate::ids::NetId;

/// What [`move_players`] changes on a player.
type MoverItem<'a> =
    (&'a SoccerControl, &'a mut Position, &'a mut Facing, &'a mut Stamina, &'a mut Velocity);

/// Steps every player with [`step_player`] (the function the client predicts with) and records
/// how fast it went, for the ball's bounces (`SoccerSet::Movement`).
pub fn move_players(
    clock: Res<'_, SimClock>,
    mut players: Query<'_, '_, MoverItem<'_>, Without<Ball>>,
) {
    for (control, mut position, mut facing, mut stamina, mut velocity) in &mut players {
        let before = position.0;
        let mut state = PlayerState { position: position.0, facing: facing.0, stamina: stamina.0 };
        step_player(&mut state, control, clock.dt);
        position.0 = state.position;
        facing.0 = state.facing;
        stamina.0 = state.stamina;
        velocity.0 = if clock.dt > 0.0 { (state.position - before) / clock.dt } else { Vec2::ZERO };
    }
}

/// What [`kick_ball`] reads and changes on a player.
type KickerItem<'a> =
    (&'a NetId, &'a Team, &'a Position, &'a Facing, &'a SoccerControl, &'a mut KickState);

/// Takes this tick's kicks (`SoccerSet::Ball`). A kick asked for while the ball is out of
/// reach waits [`SoccerRules::kick_buffer_ticks`] for it. Of the players able to kick, the one
/// nearest the ball does (ties to the lower id): the ball leaves along its facing at
/// [`kick_speed`] of its power, and its kicker waits [`SoccerRules::kick_cooldown_ticks`].
/// Nobody kicks while play is stopped after a goal.
pub fn kick_ball(
    rules: Res<'_, SoccerRules>,
    referee: Res<'_, Referee>,
    mut kickers: Query<'_, '_, KickerItem<'_>, Without<Ball>>,
    mut ball: Query<'_, '_, (&Position, &mut Velocity, &mut Ball)>,
) {
    let Ok((ball_at, mut ball_velocity, mut ball)) = ball.single_mut() else { return };
    let live = referee.play == Play::Live;
    let mut kickers: Vec<_> = kickers.iter_mut().collect();
    kickers.sort_by_key(|k| *k.0);
    let mut best: Option<(f32, usize)> = None;
    for (i, (_, _, position, facing, control, kick)) in kickers.iter_mut().enumerate() {
        kick.cooldown = kick.cooldown.saturating_sub(1);
        if control.kick > 0 {
            kick.pending_power = control.kick;
            kick.pending_ticks = rules.kick_buffer_ticks;
        } else if kick.pending_ticks > 0 {
            kick.pending_ticks -= 1;
        }
        if kick.pending_ticks == 0 || !live {
            kick.pending_power = 0;
            kick.pending_ticks = 0;
        }
        if kick.pending_power == 0
            || kick.cooldown > 0
            || !can_kick(position.0, facing.0, ball_at.0)
        {
            continue;
        }
        let d = position.0.distance_squared(ball_at.0);
        if best.is_none_or(|(bd, _)| d < bd) {
            best = Some((d, i));
        }
    }
    let Some((_, i)) = best else { return };
    let (id, team, _, facing, _, kick) = &mut kickers[i];
    let (id, team) = (**id, **team);
    ball_velocity.0 = Vec2::from_angle(facing.0) * kick_speed(kick.pending_power);
    ball.last_touch = Some(Toucher { id, team });
    kick.cooldown = rules.kick_cooldown_ticks;
    kick.pending_power = 0;
    kick.pending_ticks = 0;
}

/// Rolls the ball with [`step_ball`] against the players (in id order), records its last
/// toucher, and tells the [`Referee`] when it went in (`SoccerSet::Ball`). The ball rests
/// while play is stopped.
pub fn move_ball(
    clock: Res<'_, SimClock>,
    mut referee: ResMut<'_, Referee>,
    players: Query<'_, '_, (&NetId, &Team, &Position, &Velocity), Without<Ball>>,
    mut ball: Query<'_, '_, (&mut Position, &mut Velocity, &mut Ball)>,
) {
    let Ok((mut position, mut velocity, mut ball)) = ball.single_mut() else { return };
    if referee.play != Play::Live {
        velocity.0 = Vec2::ZERO;
        return;
    }
    let mut bodies: Vec<Body> = players
        .iter()
        .map(|(&id, &team, p, v)| Body { id, team, position: p.0, velocity: v.0 })
        .collect();
    bodies.sort_unstable_by_key(|b| b.id);
    let mut body = BallBody { position: position.0, velocity: velocity.0 };
    let step = step_ball(&mut body, &bodies, clock.dt);
    position.0 = body.position;
    velocity.0 = body.velocity;
    if let Some(i) = step.touched {
        ball.last_touch = Some(Toucher { id: bodies[i].id, team: bodies[i].team });
    }
    if let Some(team) = step.goal {
        referee.pending_goal = Some(team);
    }
}

/// What the referee moves at a kick-off.
type LineUpItem<'a> = (
    &'a NetId,
    &'a Team,
    &'a FormationSlot,
    &'a mut Position,
    &'a mut Velocity,
    &'a mut Facing,
    &'a mut KickState,
    &'a mut Goals,
);

/// The referee (`SoccerSet::Rules`): a goal adds to the [`MatchScore`] and to the scorer's
/// [`Goals`] (the last toucher, when of the scoring team: an own goal credits nobody), pushes
/// [`SoccerEvent::Goal`] and stops play; [`SoccerRules::kickoff_delay_ticks`] later the ball
/// is back on the centre spot, everyone on their formation spot, the side that conceded
/// kicks off, and [`SoccerEvent::Kickoff`] is pushed.
pub fn referee(
    clock: Res<'_, SimClock>,
    rules: Res<'_, SoccerRules>,
    mut referee: ResMut<'_, Referee>,
    mut events: ResMut<'_, GameEvents<SoccerEvent>>,
    mut score: Query<'_, '_, &mut MatchScore>,
    mut ball: Query<'_, '_, (&mut Position, &mut Velocity, &mut Ball)>,
    mut players: Query<'_, '_, LineUpItem<'_>, Without<Ball>>,
) {
    if let Some(team) = referee.pending_goal.take() {
        for mut s in &mut score {
            s.add(team);
        }
        let scorer = ball
            .single()
            .ok()
            .and_then(|(_, _, b)| b.last_touch)
            .filter(|t| t.team == team)
            .map(|t| t.id);
        if let Some(scorer) = scorer
            && let Some(mut goals) = players.iter_mut().find(|p| *p.0 == scorer).map(|p| p.7)
        {
            goals.0 = goals.0.saturating_add(1);
        }
        events.0.push(SoccerEvent::Goal { team, scorer });
        referee.play = Play::Stopped { kickoff_at: clock.tick.plus(rules.kickoff_delay_ticks) };
        referee.kickoff_team = team.other();
        return;
    }
    let Play::Stopped { kickoff_at } = referee.play else { return };
    if clock.tick.diff(kickoff_at) < 0 {
        return;
    }
    if let Ok((mut position, mut velocity, mut ball)) = ball.single_mut() {
        position.0 = Vec2::ZERO;
        velocity.0 = Vec2::ZERO;
        ball.last_touch = None;
    }
    for (_, &team, slot, mut position, mut velocity, mut facing, mut kick, _) in &mut players {
        position.0 = formation_spot(team, usize::from(slot.0), team == referee.kickoff_team);
        velocity.0 = Vec2::ZERO;
        facing.0 = snap_angle(team.forward_angle());
        *kick = KickState::default();
    }
    referee.play = Play::Live;
    events.0.push(SoccerEvent::Kickoff);
}
