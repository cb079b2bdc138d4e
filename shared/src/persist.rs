//! Saving a room's world exactly and putting it back: what a rolling restart hands from one
//! instance to another, and what a development restart reloads.
//!
//! A game lists what makes up its state ([`crate::game::Game::persist`]): every component its
//! entities carry, replicated or server-only, and the resources its rules change (a referee's
//! state). The engine adds its own: [`crate::ids::NetId`], [`crate::game::Controlled`],
//! [`crate::rewind::ViewLag`], the clock, the id allocator, the random numbers and the rewind
//! histories. Each is saved with serde as it is, not quantized, so a restored world steps
//! exactly as the original would have.
//!
//! What is not listed is not guessed: saving a world whose entities carry a component nobody
//! listed fails and names the component ([`PersistError::NotPersisted`]), so a game that forgets
//! one finds out in its own tests (each game's `a_saved_match_goes_on_exactly`), not in a deploy.
//! Resources the game's `build` makes from the configuration alone (a map, tick-counted rules)
//! need not be listed: the restored room builds them again from the same settings.

use std::any::TypeId;

use bevy_ecs::prelude::*;
use bevy_ecs::resource::IsResource;
use bevy_ecs::world::EntityWorldMut;
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde::{Deserialize as De, Serialize as Ser};
use thiserror::Error;

/// A saved world or room larger than this is refused (a few players and a few thousand
/// entities take tens of KiB): bounds what a corrupt or hostile save can make a decoder
/// allocate.
pub const MAX_SAVE_BYTES: usize = 64 << 20;

type Config = bincode::config::Configuration<
    bincode::config::LittleEndian,
    bincode::config::Varint,
    bincode::config::Limit<MAX_SAVE_BYTES>,
>;

fn config() -> Config {
    bincode::config::standard().with_limit::<MAX_SAVE_BYTES>()
}

/// Encodes `value` as a save does (bincode, standard configuration, [`MAX_SAVE_BYTES`]).
///
/// # Errors
///
/// When serde refuses the value or it is too large.
pub fn encode<T: Serialize>(value: &T) -> Result<Vec<u8>, PersistError> {
    bincode::serde::encode_to_vec(value, config()).map_err(|e| PersistError::Encode(e.to_string()))
}

/// Decodes what [`encode`] wrote; the whole of `bytes` must be used.
///
/// # Errors
///
/// When the bytes are not a `T`, are too large, or have bytes left over.
pub fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, PersistError> {
    if bytes.len() > MAX_SAVE_BYTES {
        return Err(PersistError::Decode(format!("{} bytes is over the limit", bytes.len())));
    }
    let (value, used) = bincode::serde::decode_from_slice(bytes, config())
        .map_err(|e| PersistError::Decode(e.to_string()))?;
    if used != bytes.len() {
        return Err(PersistError::Decode(format!("{} bytes left over", bytes.len() - used)));
    }
    Ok(value)
}

/// Why a world could not be saved or restored.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum PersistError {
    /// An entity carries a component the game did not list in `Game::persist`.
    #[error(
        "component {0} is not persisted: list it in the game's `persist` (or as transient if \
         every tick rebuilds it)"
    )]
    NotPersisted(String),
    /// A value could not be encoded.
    #[error("cannot encode the state: {0}")]
    Encode(String),
    /// A save could not be decoded.
    #[error("cannot decode the state: {0}")]
    Decode(String),
    /// The save was made by a build that persists other components or resources.
    #[error(
        "the save lists other components or resources than this build (schema {saved:#x}, \
         here {here:#x})"
    )]
    Schema {
        /// The save's [`Persistence::fingerprint`].
        saved: u64,
        /// This build's.
        here: u64,
    },
    /// The save is of another game.
    #[error("the save is of game {saved:?}, not {here:?}")]
    Game {
        /// The save's game.
        saved: String,
        /// The game asked for.
        here: String,
    },
    /// The save's format is not one this build reads.
    #[error("save format {0} is not one this build reads")]
    Format(u32),
    /// The save is inconsistent (a player's entity that is not in it).
    #[error("the save is inconsistent: {0}")]
    Inconsistent(String),
}

type SaveComponent = fn(&EntityWorldMut<'_>) -> Option<Result<Vec<u8>, PersistError>>;
type LoadComponent = fn(&mut EntityWorldMut<'_>, &[u8]) -> Result<(), PersistError>;
type SaveResource = fn(&World) -> Option<Result<Vec<u8>, PersistError>>;
type LoadResource = fn(&mut World, &[u8]) -> Result<(), PersistError>;

struct ComponentEntry {
    name: &'static str,
    type_id: TypeId,
    save: SaveComponent,
    load: LoadComponent,
}

struct ResourceEntry {
    name: &'static str,
    type_id: TypeId,
    save: SaveResource,
    load: LoadResource,
}

fn save_component<C: Component + Serialize>(
    entity: &EntityWorldMut<'_>,
) -> Option<Result<Vec<u8>, PersistError>> {
    entity.get::<C>().map(encode)
}

fn load_component<C: Component + DeserializeOwned>(
    entity: &mut EntityWorldMut<'_>,
    bytes: &[u8],
) -> Result<(), PersistError> {
    entity.insert(decode::<C>(bytes)?);
    Ok(())
}

fn save_resource<R: Resource + Serialize>(world: &World) -> Option<Result<Vec<u8>, PersistError>> {
    world.get_resource::<R>().map(encode)
}

fn load_resource<R: Resource + DeserializeOwned>(
    world: &mut World,
    bytes: &[u8],
) -> Result<(), PersistError> {
    world.insert_resource(decode::<R>(bytes)?);
    Ok(())
}

/// What makes up a room's world, for saving and restoring it: see the
/// [module documentation](self). The engine keeps it as a resource of each room's world;
/// games add to it in [`crate::game::Game::persist`].
#[derive(Resource, Default)]
pub struct Persistence {
    components: Vec<ComponentEntry>,
    resources: Vec<ResourceEntry>,
    /// Components every tick rebuilds: neither saved nor refused.
    transient: Vec<TypeId>,
}

impl std::fmt::Debug for Persistence {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Persistence")
            .field("components", &self.components.iter().map(|c| c.name).collect::<Vec<_>>())
            .field("resources", &self.resources.iter().map(|r| r.name).collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}

/// A saved world: the entities (each its components, by index in [`Persistence`]'s list) in
/// the order they were spawned, and the resources.
#[derive(Ser, De, Clone, Debug, PartialEq, Eq)]
pub struct WorldSave {
    /// [`Persistence::fingerprint`] of the build that saved it.
    pub schema: u64,
    /// Every entity: `(component index, encoded component)`.
    pub entities: Vec<Vec<(u16, Vec<u8>)>>,
    /// Every persisted resource present: `(resource index, encoded resource)`.
    pub resources: Vec<(u16, Vec<u8>)>,
}

impl Persistence {
    /// Nothing listed yet.
    #[must_use]
    pub fn new() -> Persistence {
        Persistence::default()
    }

    /// Lists component `C` (listing it again changes nothing).
    pub fn component<C: Component + Serialize + DeserializeOwned>(&mut self) -> &mut Self {
        let type_id = TypeId::of::<C>();
        if !self.components.iter().any(|c| c.type_id == type_id) {
            self.components.push(ComponentEntry {
                name: std::any::type_name::<C>(),
                type_id,
                save: save_component::<C>,
                load: load_component::<C>,
            });
        }
        self
    }

    /// Lists resource `R` (listing it again changes nothing).
    pub fn resource<R: Resource + Serialize + DeserializeOwned>(&mut self) -> &mut Self {
        let type_id = TypeId::of::<R>();
        if !self.resources.iter().any(|r| r.type_id == type_id) {
            self.resources.push(ResourceEntry {
                name: std::any::type_name::<R>(),
                type_id,
                save: save_resource::<R>,
                load: load_resource::<R>,
            });
        }
        self
    }

    /// Declares component `C` transient: the rules rebuild it before anything reads it, so it
    /// is neither saved nor refused.
    pub fn transient<C: Component>(&mut self) -> &mut Self {
        let type_id = TypeId::of::<C>();
        if !self.transient.contains(&type_id) {
            self.transient.push(type_id);
        }
        self
    }

    /// A 64-bit FNV-1a hash of what is listed, in order: a save restores only where the
    /// fingerprint is the same.
    #[must_use]
    pub fn fingerprint(&self) -> u64 {
        let mut h = crate::fnv::Fnv64::new();
        for name in self.components.iter().map(|c| c.name) {
            h.eat(name.as_bytes());
            h.eat(&[0xff]);
        }
        h.eat(&[0xfe]);
        for name in self.resources.iter().map(|r| r.name) {
            h.eat(name.as_bytes());
            h.eat(&[0xff]);
        }
        h.finish()
    }

    /// Saves every entity of `world` (resources aside) and every listed resource.
    /// `entities` comes back with the saved entities in save order, so the caller can name
    /// entities by their place in the save.
    ///
    /// # Errors
    ///
    /// [`PersistError::NotPersisted`] for an entity with a component not listed;
    /// [`PersistError::Encode`] when serde refuses a value.
    pub fn save(
        &self,
        world: &mut World,
        entities: &mut Vec<Entity>,
    ) -> Result<WorldSave, PersistError> {
        entities.clear();
        entities.extend(
            world.query_filtered::<Entity, Without<IsResource>>().iter(world).collect::<Vec<_>>(),
        );
        // Spawn order (entity index): a restored world spawns them in the same order.
        entities.sort_unstable_by_key(|e| e.index_u32());
        let mut saved = Vec::with_capacity(entities.len());
        for &entity in entities.iter() {
            self.check_listed(world, entity)?;
            let e = world.entity_mut(entity);
            let mut components = Vec::new();
            for (i, c) in self.components.iter().enumerate() {
                if let Some(bytes) = (c.save)(&e) {
                    components.push((i as u16, bytes?));
                }
            }
            saved.push(components);
        }
        let mut resources = Vec::new();
        for (i, r) in self.resources.iter().enumerate() {
            if let Some(bytes) = (r.save)(world) {
                resources.push((i as u16, bytes?));
            }
        }
        Ok(WorldSave { schema: self.fingerprint(), entities: saved, resources })
    }

    /// The name of the component at `index` in a [`WorldSave`]'s entities.
    #[must_use]
    pub fn component_name(&self, index: u16) -> Option<&'static str> {
        self.components.get(usize::from(index)).map(|c| c.name)
    }

    /// The name of the resource at `index` in [`WorldSave::resources`].
    #[must_use]
    pub fn resource_name(&self, index: u16) -> Option<&'static str> {
        self.resources.get(usize::from(index)).map(|r| r.name)
    }

    /// Where component `C` sits in a [`WorldSave`]'s entities, if listed.
    #[must_use]
    pub fn component_index<C: Component>(&self) -> Option<u16> {
        let type_id = TypeId::of::<C>();
        self.components.iter().position(|c| c.type_id == type_id).map(|i| i as u16)
    }

    fn check_listed(&self, world: &World, entity: Entity) -> Result<(), PersistError> {
        let Ok(infos) = world.inspect_entity(entity) else { return Ok(()) };
        for (_, info) in infos {
            let Some(type_id) = info.type_id() else { continue };
            let listed = self.components.iter().any(|c| c.type_id == type_id)
                || self.transient.contains(&type_id);
            if !listed {
                return Err(PersistError::NotPersisted(info.name().to_string()));
            }
        }
        Ok(())
    }

    /// Replaces every entity of `world` (resources aside) by the saved ones, spawned in their
    /// saved order, and the listed resources by the saved ones. Returns the new entities in
    /// save order.
    ///
    /// # Errors
    ///
    /// [`PersistError::Schema`] when the save lists other things than this build;
    /// [`PersistError::Decode`] when a value does not decode. The world is then left as it
    /// was, or partly restored: throw it away.
    pub fn load(&self, world: &mut World, save: &WorldSave) -> Result<Vec<Entity>, PersistError> {
        if save.schema != self.fingerprint() {
            return Err(PersistError::Schema { saved: save.schema, here: self.fingerprint() });
        }
        let old: Vec<Entity> =
            world.query_filtered::<Entity, Without<IsResource>>().iter(world).collect();
        for entity in old {
            world.despawn(entity);
        }
        let mut spawned = Vec::with_capacity(save.entities.len());
        for components in &save.entities {
            let mut e = world.spawn_empty();
            for (i, bytes) in components {
                let entry = self
                    .components
                    .get(usize::from(*i))
                    .ok_or_else(|| PersistError::Decode(format!("no component {i}")))?;
                (entry.load)(&mut e, bytes)?;
            }
            spawned.push(e.id());
        }
        for (i, bytes) in &save.resources {
            let entry = self
                .resources
                .get(usize::from(*i))
                .ok_or_else(|| PersistError::Decode(format!("no resource {i}")))?;
            (entry.load)(world, bytes)?;
        }
        Ok(spawned)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Component, Ser, De, Clone, Debug, PartialEq)]
    struct Hp(f32);

    #[derive(Component, Ser, De, Clone, Debug, PartialEq)]
    struct Tag(String);

    #[derive(Component)]
    struct Secret;

    #[derive(Resource, Ser, De, Clone, Debug, PartialEq)]
    struct Round(u32);

    fn persistence() -> Persistence {
        let mut p = Persistence::new();
        p.component::<Hp>().component::<Tag>().resource::<Round>();
        p
    }

    #[test]
    fn a_world_comes_back_exactly() {
        let p = persistence();
        let mut world = World::new();
        world.spawn((Hp(0.1 + 0.2), Tag("a".into())));
        let gone = world.spawn(Hp(1.0)).id();
        world.spawn(Tag("c".into()));
        world.despawn(gone);
        world.insert_resource(Round(7));
        let mut order = Vec::new();
        let save = p.save(&mut world, &mut order).unwrap();
        let bytes = encode(&save).unwrap();

        let mut other = World::new();
        other.spawn(Hp(99.0));
        other.insert_resource(Round(1));
        let restored = p.load(&mut other, &decode(&bytes).unwrap()).unwrap();
        assert_eq!(restored.len(), 2, "the old entity went, the two saved came");
        assert_eq!(other.get::<Hp>(restored[0]), Some(&Hp(0.1 + 0.2)), "not rounded");
        assert_eq!(other.get::<Tag>(restored[0]), Some(&Tag("a".into())));
        assert_eq!(other.get::<Hp>(restored[1]), None);
        assert_eq!(other.get::<Tag>(restored[1]), Some(&Tag("c".into())));
        assert_eq!(other.resource::<Round>(), &Round(7));
    }

    #[test]
    fn a_component_nobody_listed_is_named_not_lost() {
        let p = persistence();
        let mut world = World::new();
        world.spawn((Hp(1.0), Secret));
        let err = p.save(&mut world, &mut Vec::new()).unwrap_err();
        assert!(matches!(&err, PersistError::NotPersisted(_)), "{err}");
        let mut q = persistence();
        q.transient::<Secret>();
        let save = q.save(&mut world, &mut Vec::new()).unwrap();
        assert_eq!(save.entities, vec![vec![(0, encode(&Hp(1.0)).unwrap())]]);
    }

    #[test]
    fn a_save_of_another_schema_or_bad_bytes_is_refused() {
        let p = persistence();
        let mut world = World::new();
        world.spawn(Hp(1.0));
        let save = p.save(&mut world, &mut Vec::new()).unwrap();
        let mut q = Persistence::new();
        q.component::<Hp>();
        assert!(matches!(q.load(&mut World::new(), &save), Err(PersistError::Schema { .. })));
        let mut bad = save.clone();
        bad.entities[0][0].1 = vec![0xff; 3];
        assert!(matches!(p.load(&mut World::new(), &bad), Err(PersistError::Decode(_))));
        let mut bytes = encode(&save).unwrap();
        bytes.push(0);
        assert!(decode::<WorldSave>(&bytes).is_err(), "trailing bytes");
        assert!(decode::<WorldSave>(&[0xff; 9]).is_err());
    }
}
