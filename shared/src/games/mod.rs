//! The games. Each lives in a folder of its own (`games/<name>/`), reaches the engine only
//! through [`crate::game::Game`], and is listed once in the `games!` line below: that is all
//! it takes for the server, the bots, the match runner and `tickwire games` to know it.

pub mod arena;
pub mod soccer;

use thiserror::Error;

use crate::game::Game;

/// One game's name and description (`tickwire games --json`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GameInfo {
    /// [`Game::NAME`].
    pub name: &'static str,
    /// [`Game::DESCRIPTION`].
    pub description: &'static str,
}

/// Something to do with a game type picked by name at run time: [`visit`] calls
/// [`GameVisitor::visit`] with the type whose [`Game::NAME`] matches.
pub trait GameVisitor {
    /// What the visit returns.
    type Output;
    /// Does it with game `G`.
    fn visit<G: Game>(self) -> Self::Output;
}

/// No game has that name.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
#[error("unknown game {0:?} (known: {known})", known = names().join(", "))]
pub struct UnknownGame(pub String);

/// The names of every game, the default first.
#[must_use]
pub fn names() -> Vec<&'static str> {
    ALL.iter().map(|g| g.name).collect()
}

/// The default game: the first one listed.
#[must_use]
pub fn default_name() -> &'static str {
    ALL[0].name
}

/// Whether a game of that name exists.
#[must_use]
pub fn exists(name: &str) -> bool {
    ALL.iter().any(|g| g.name == name)
}

macro_rules! games {
    ($($game:path),+ $(,)?) => {
        /// Every game, the default first.
        pub const ALL: &[GameInfo] = &[$(GameInfo {
            name: <$game as Game>::NAME,
            description: <$game as Game>::DESCRIPTION,
        }),+];

        /// Calls `visitor` with the game named `name`.
        ///
        /// # Errors
        ///
        /// When no game has that name.
        pub fn visit<V: GameVisitor>(name: &str, visitor: V) -> Result<V::Output, UnknownGame> {
            $(if name == <$game as Game>::NAME {
                return Ok(visitor.visit::<$game>());
            })+
            Err(UnknownGame(name.to_owned()))
        }
    };
}

// The registration: one line per game, the default first.
games! {
    arena::ArenaGame,
    soccer::SoccerGame,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::game::registry;

    struct Check;

    impl GameVisitor for Check {
        type Output = (&'static str, usize);
        fn visit<G: Game>(self) -> (&'static str, usize) {
            // Every game's registry builds and declares a position.
            let mut r = crate::registry::ReplicationRegistry::new();
            if let Err(e) = G::replicate(&mut r) {
                panic!("{}: {e}", G::NAME);
            }
            assert_eq!(r.fingerprint(), registry::<G>().fingerprint());
            assert!(r.position_offset().is_some(), "{} declares no position", G::NAME);
            (G::NAME, r.len())
        }
    }

    #[test]
    fn every_game_is_listed_once_and_its_registry_builds() {
        let names = names();
        let mut unique = names.clone();
        unique.sort_unstable();
        unique.dedup();
        assert_eq!(unique.len(), names.len(), "{names:?}");
        for name in &names {
            assert_eq!(visit(name, Check).unwrap().0, *name);
        }
        assert_eq!(default_name(), "arena");
        assert!(exists("arena") && !exists("chess"));
        let err = visit("chess", Check).unwrap_err();
        assert!(err.to_string().contains("arena"), "{err}");
    }
}
