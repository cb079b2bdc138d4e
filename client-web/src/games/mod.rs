//! The games the browser can play: each is a folder (`games/<name>/`) with a [`GameView`] (how
//! it is drawn and how keys and the mouse become its input), listed once in the `views!` line
//! below. The shell (`crate::app`) learns the game of a room from the server's `Welcome` and
//! runs the matching view; it names no game.

pub mod arena;
pub mod soccer;

use glam::Vec2;
use tickwire_shared::NetId;
use tickwire_shared::game::Game;
use tickwire_shared::registry::ReplicationRegistry;
use tickwire_shared::snapshot::{EntityView, ReplicatedState};
use tickwire_shared::tick::Tick;
use web_sys::CanvasRenderingContext2d;

use crate::names::Names;
use crate::render::Camera;
use crate::session::{AnySession, GameSession};

/// The keys held: a handful at most, so a list (no hash table in the page's wasm).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Keys(Vec<String>);

impl Keys {
    /// Records `code` as held.
    pub fn insert(&mut self, code: String) {
        if !self.contains(&code) {
            self.0.push(code);
        }
    }

    /// Records `code` as released.
    pub fn remove(&mut self, code: &str) {
        self.0.retain(|c| c != code);
    }

    /// Whether `code` is held.
    #[must_use]
    pub fn contains(&self, code: &str) -> bool {
        self.0.iter().any(|c| c == code)
    }
}

/// The player's controls as the page sees them.
#[derive(Clone, Debug, Default)]
pub struct Controls {
    /// The `KeyboardEvent.code`s held (only the game's keys: [`GameView::is_game_key`]).
    pub keys: Keys,
    /// The world point under the mouse.
    pub pointer: Vec2,
    /// Whether the primary mouse button is held.
    pub primary: bool,
}

impl Controls {
    /// Whether any of `codes` is held.
    #[must_use]
    pub fn any(&self, codes: &[&str]) -> bool {
        codes.iter().any(|c| self.keys.contains(c))
    }

    /// `1.0` when a `plus` key is held, `-1.0` for a `minus` key, `0.0` for both or neither.
    #[must_use]
    pub fn axis(&self, plus: &[&str], minus: &[&str]) -> f32 {
        f32::from(i8::from(self.any(plus)) - i8::from(self.any(minus)))
    }
}

/// What a view draws from, once per animation frame.
pub struct Frame<'a> {
    /// The camera (centred on the own player).
    pub camera: &'a Camera,
    /// The registry snapshots decode with.
    pub registry: &'a ReplicationRegistry,
    /// The newest decoded state and its tick.
    pub latest: (Tick, &'a ReplicatedState),
    /// Everyone but the own player, where interpolation puts them now.
    pub interpolated: &'a [(NetId, Vec2)],
    /// The own entity, once welcomed.
    pub own: Option<NetId>,
    /// Where the own player is drawn (predicted and smoothed), if it is in the state.
    pub own_position: Option<Vec2>,
    /// The interpolation's render time: a tick and the fraction past it.
    pub render_at: Option<(Tick, f32)>,
    /// Seconds per tick.
    pub tick_secs: f32,
    /// Names of players.
    pub names: &'a Names,
    /// The controls (the own aim follows the pointer before the server confirms it).
    pub controls: &'a Controls,
}

/// How the browser plays game [`GameView::Game`]: its input mapping and its drawing.
pub trait GameView: Sized + 'static {
    /// The game.
    type Game: Game;

    /// The help line under the chat.
    const HELP: &'static str;

    /// World units visible across the shorter side of the canvas.
    const VIEW_UNITS: f64 = 700.0;

    /// A view for a new session with a server stepping `tick_rate` times a second.
    fn new(tick_rate: u16) -> Self;

    /// Whether `code` (a `KeyboardEvent.code`) is one of the game's keys: it is tracked in
    /// [`Controls::keys`] and does not scroll the page.
    fn is_game_key(code: &str) -> bool;

    /// The camera of a frame on a `size` canvas: by default centred on the own player
    /// (`own`, where it is drawn) showing [`GameView::VIEW_UNITS`] across the shorter side. The
    /// shell converts the mouse with it too.
    fn camera(&self, own: Option<Vec2>, size: (f64, f64)) -> Camera {
        Camera::new(own.unwrap_or_default(), size.0, size.1, Self::VIEW_UNITS)
    }

    /// The input of one tick, quantized as it is sent. `own_at` is the predicted own position.
    fn input(&mut self, controls: &Controls, own_at: Option<Vec2>) -> <Self::Game as Game>::Input;

    /// Draws one frame: the background and every entity.
    fn draw(&mut self, ctx: &CanvasRenderingContext2d, frame: &Frame<'_>);

    /// The kill-feed line for a game event, if it deserves one (the view may remember the
    /// event too, for a banner).
    fn describe(
        &mut self,
        event: &<Self::Game as Game>::Event,
        names: &Names,
        own: Option<NetId>,
    ) -> Option<String>;

    /// The scoreboard's text (a header line, then one line per competitor).
    fn scoreboard(
        &self,
        registry: &ReplicationRegistry,
        state: &ReplicatedState,
        names: &Names,
        own: Option<NetId>,
    ) -> String;

    /// What an entity is, for the test hook (`"Player"`, `"Projectile"`, …).
    fn kind(&self, registry: &ReplicationRegistry, entity: EntityView<'_>) -> &'static str;

    /// The own player's standing for the test hook (`score` in `window.tickwire.state()`).
    fn score(
        &self,
        registry: &ReplicationRegistry,
        entity: EntityView<'_>,
    ) -> Vec<(&'static str, f64)>;
}

macro_rules! views {
    ($($view:path),+ $(,)?) => {
        /// A session of the game named `game` (from the server's `Welcome`), if this page can
        /// play it.
        #[must_use]
        pub fn session_for(game: &str, tick_rate: u16) -> Option<Box<dyn AnySession>> {
            $(if game == <<$view as GameView>::Game as Game>::NAME {
                return Some(Box::new(GameSession::<$view>::new(tick_rate)));
            })+
            None
        }

        /// The names of the games this page can play.
        #[must_use]
        pub fn names() -> Vec<&'static str> {
            vec![$(<<$view as GameView>::Game as Game>::NAME),+]
        }
    };
}

// The registration: one line per game.
views! {
    arena::ArenaView,
    soccer::SoccerView,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_server_game_has_a_view() {
        for info in tickwire_shared::games::ALL {
            assert!(names().contains(&info.name), "the page cannot draw {}", info.name);
            assert!(session_for(info.name, 60).is_some());
        }
        assert!(session_for("chess", 60).is_none());
    }

    #[test]
    fn controls_read_axes() {
        let mut c = Controls::default();
        c.keys.insert("KeyD".into());
        assert_eq!(c.axis(&["KeyD"], &["KeyA"]), 1.0);
        c.keys.insert("KeyA".into());
        assert_eq!(c.axis(&["KeyD"], &["KeyA"]), 0.0);
    }
}
