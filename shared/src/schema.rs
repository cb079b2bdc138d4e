//! The protocol and each game, described: what a client and a server compare at the handshake,
//! so that a mismatched client is told *what* differs (a component added, a field quantized
//! another way, a message with a new field) instead of a bare version or fingerprint mismatch.
//!
//! - [`GameSchema`]: a game's replicated components in order, each field's name, wire kind and
//!   quantization ([`crate::registry::FieldSpec::quantization`]), the position component and the
//!   shape of its input. The server sends the room's game's in its `Welcome`; the client
//!   compares it with its own ([`GameSchema::diff`]).
//! - [`Schema`]: the protocol version, the shape of every message both ways, and every game.
//!   `GET /api/schema` serves it, so a client refused at the handshake (another protocol
//!   version) can still say what differs ([`Schema::diff`]).
//!
//! Shapes are read off real values by serde ([`shape_of`]): a message's description cannot
//! drift from its type.

use std::fmt;

use serde::ser::{self, Serialize};
use serde::{Deserialize, Serialize as Ser};

use crate::game::{self, Game};
use crate::ids::{ClientId, NetId};
use crate::protocol::{
    ClientMessage, DisconnectReason, InputBatch, PROTOCOL_VERSION, RoomEvent, ServerMessage,
    SnapshotMessage, ViewTime, Welcome,
};
use crate::tick::Tick;

/// The shape of a serde value: what its encoding is made of, names included.
#[derive(Ser, Deserialize, Clone, Debug, PartialEq, Eq)]
pub enum Shape {
    /// A primitive (`u16`, `f32`, `bool`, `string`, `bytes`, `()`), or a unit struct or
    /// variant by name.
    Plain(String),
    /// `Option<T>`; `None` when the sample had no value.
    Option(Option<Box<Shape>>),
    /// A sequence; the element's shape when the sample had one.
    Seq(Option<Box<Shape>>),
    /// A tuple.
    Tuple(Vec<Shape>),
    /// A map (its first entry's key and value, when the sample had one).
    Map(Option<Box<(Shape, Shape)>>),
    /// A struct, a struct variant, a tuple struct or a newtype (positional fields are named
    /// `0`, `1`, …).
    Named {
        /// The struct's or variant's name.
        name: String,
        /// The fields, in order.
        fields: Vec<(String, Shape)>,
    },
}

impl fmt::Display for Shape {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Shape::Plain(name) => f.write_str(name),
            Shape::Option(Some(inner)) => write!(f, "Option<{inner}>"),
            Shape::Option(None) => f.write_str("Option<?>"),
            Shape::Seq(Some(inner)) => write!(f, "[{inner}]"),
            Shape::Seq(None) => f.write_str("[?]"),
            Shape::Tuple(items) => {
                f.write_str("(")?;
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    write!(f, "{item}")?;
                }
                f.write_str(")")
            }
            Shape::Map(Some(kv)) => write!(f, "map<{}, {}>", kv.0, kv.1),
            Shape::Map(None) => f.write_str("map<?, ?>"),
            Shape::Named { name, fields } => {
                write!(f, "{name} {{ ")?;
                for (i, (field, shape)) in fields.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    write!(f, "{field}: {shape}")?;
                }
                f.write_str(" }")
            }
        }
    }
}

/// The shape of `value` as serde sees it: structs and variants by name with their fields,
/// primitives by type. An `Option` or a sequence shows its element only when `value` has one,
/// so describe well-filled samples.
#[must_use]
pub fn shape_of<T: Serialize + ?Sized>(value: &T) -> Shape {
    value.serialize(Recorder).unwrap_or_else(|e| Shape::Plain(format!("<{}>", e.0)))
}

/// A replicated field, described.
#[derive(Ser, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct FieldSchema {
    /// Its name.
    pub name: String,
    /// `int` or `angle` (how deltas are taken).
    pub kind: String,
    /// How the value becomes the field.
    pub quantization: String,
}

/// A replicated component, described.
#[derive(Ser, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct ComponentSchema {
    /// Its stable name ([`crate::registry::Replicate::NAME`]).
    pub name: String,
    /// Its wire fields, in order.
    pub fields: Vec<FieldSchema>,
}

/// A game, described: what both sides of a session must agree on.
#[derive(Ser, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct GameSchema {
    /// [`Game::NAME`].
    pub game: String,
    /// The replicated components, in registration order (the engine's hidden motion
    /// included).
    pub components: Vec<ComponentSchema>,
    /// The position component's name, if one is declared.
    pub position: Option<String>,
    /// The shape of one input frame ([`Game::Input`]'s default).
    pub input: Shape,
}

impl GameSchema {
    /// Game `G`, described.
    #[must_use]
    pub fn of<G: Game>() -> GameSchema {
        let registry = game::registry::<G>();
        let components = registry
            .layout()
            .map(|(idx, _, fields)| ComponentSchema {
                name: registry.name(idx).to_owned(),
                fields: fields
                    .iter()
                    .map(|f| FieldSchema {
                        name: f.name.to_owned(),
                        kind: format!("{:?}", f.kind).to_lowercase(),
                        quantization: f.quantization.to_owned(),
                    })
                    .collect(),
            })
            .collect();
        GameSchema {
            game: G::NAME.to_owned(),
            components,
            position: registry.position_index().map(|idx| registry.name(idx).to_owned()),
            input: shape_of(&G::Input::default()),
        }
    }

    /// What differs from `server`'s description of the same game, one line each for people
    /// ("here" is this side); empty when nothing does.
    #[must_use]
    pub fn diff(&self, server: &GameSchema) -> Vec<String> {
        let mut out = Vec::new();
        if self.game != server.game {
            out.push(format!("game: {:?} here, {:?} on the server", self.game, server.game));
            return out;
        }
        for c in &self.components {
            match server.components.iter().find(|s| s.name == c.name) {
                None => out.push(format!("component {}: only here", c.name)),
                Some(s) => diff_fields(c, s, &mut out),
            }
        }
        for s in &server.components {
            if !self.components.iter().any(|c| c.name == s.name) {
                out.push(format!("component {}: only on the server", s.name));
            }
        }
        let order = |cs: &[ComponentSchema]| cs.iter().map(|c| c.name.clone()).collect::<Vec<_>>();
        let (ours, theirs) = (order(&self.components), order(&server.components));
        let mut common_ours = ours.clone();
        common_ours.retain(|n| theirs.contains(n));
        let mut common_theirs = theirs;
        common_theirs.retain(|n| ours.contains(n));
        if common_ours != common_theirs {
            out.push(format!(
                "component order: {} here, {} on the server",
                common_ours.join(", "),
                common_theirs.join(", ")
            ));
        }
        if self.position != server.position {
            out.push(format!(
                "position component: {} here, {} on the server",
                self.position.as_deref().unwrap_or("none"),
                server.position.as_deref().unwrap_or("none")
            ));
        }
        diff_shapes("input", &self.input, &server.input, &mut out);
        out
    }
}

fn diff_fields(ours: &ComponentSchema, theirs: &ComponentSchema, out: &mut Vec<String>) {
    let name = &ours.name;
    for f in &ours.fields {
        match theirs.fields.iter().find(|t| t.name == f.name) {
            None => out.push(format!("component {name}: field {} only here", f.name)),
            Some(t) if t.kind != f.kind => out.push(format!(
                "component {name}: field {} is {} here, {} on the server",
                f.name, f.kind, t.kind
            )),
            Some(t) if t.quantization != f.quantization => out.push(format!(
                "component {name}: field {} quantized as {} here, as {} on the server",
                f.name, f.quantization, t.quantization
            )),
            Some(_) => {}
        }
    }
    for t in &theirs.fields {
        if !ours.fields.iter().any(|f| f.name == t.name) {
            out.push(format!("component {name}: field {} only on the server", t.name));
        }
    }
    let names = |c: &ComponentSchema| c.fields.iter().map(|f| f.name.clone()).collect::<Vec<_>>();
    let (a, b) = (names(ours), names(theirs));
    if a.len() == b.len() && a != b && a.iter().all(|n| b.contains(n)) {
        out.push(format!(
            "component {name}: fields in order {} here, {} on the server",
            a.join(", "),
            b.join(", ")
        ));
    }
}

/// Differences between two shapes at `path`, field by field where both are structs.
fn diff_shapes(path: &str, ours: &Shape, theirs: &Shape, out: &mut Vec<String>) {
    match (ours, theirs) {
        (Shape::Named { name: a, fields: fa }, Shape::Named { name: b, fields: fb }) if a == b => {
            for (field, shape) in fa {
                match fb.iter().find(|(f, _)| f == field) {
                    None => out.push(format!("{path}: field {field} only here")),
                    Some((_, other)) => diff_shapes(&format!("{path}.{field}"), shape, other, out),
                }
            }
            for (field, _) in fb {
                if !fa.iter().any(|(f, _)| f == field) {
                    out.push(format!("{path}: field {field} only on the server"));
                }
            }
        }
        _ if ours != theirs => out.push(format!("{path}: {ours} here, {theirs} on the server")),
        _ => {}
    }
}

/// The protocol and every game, described (`GET /api/schema`).
#[derive(Ser, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct Schema {
    /// [`PROTOCOL_VERSION`].
    pub protocol: u16,
    /// Every message, both ways, by name (`client.Input`, `server.Welcome`, …), and the
    /// disconnect reasons.
    pub messages: Vec<(String, Shape)>,
    /// Every game this side has.
    pub games: Vec<GameSchema>,
}

impl Schema {
    /// This build's protocol and games.
    #[must_use]
    pub fn current() -> Schema {
        struct Describe;
        impl crate::games::GameVisitor for Describe {
            type Output = GameSchema;
            fn visit<G: Game>(self) -> GameSchema {
                GameSchema::of::<G>()
            }
        }
        let games = crate::games::ALL
            .iter()
            .filter_map(|g| crate::games::visit(g.name, Describe).ok())
            .collect();
        Schema { protocol: PROTOCOL_VERSION, messages: messages(), games }
    }

    /// What differs from `server`'s, one line each for people: the protocol version, the
    /// messages, and the game `game` (when both have it; else that one side lacks it).
    #[must_use]
    pub fn diff(&self, server: &Schema, game: &str) -> Vec<String> {
        let mut out = Vec::new();
        if self.protocol != server.protocol {
            out.push(format!(
                "protocol: version {} here, {} on the server",
                self.protocol, server.protocol
            ));
        }
        for (name, shape) in &self.messages {
            match server.messages.iter().find(|(n, _)| n == name) {
                None => out.push(format!("message {name}: only here")),
                Some((_, theirs)) => {
                    diff_shapes(&format!("message {name}"), shape, theirs, &mut out)
                }
            }
        }
        for (name, _) in &server.messages {
            if !self.messages.iter().any(|(n, _)| n == name) {
                out.push(format!("message {name}: only on the server"));
            }
        }
        let find = |s: &Schema| s.games.iter().find(|g| g.game == game).cloned();
        match (find(self), find(server)) {
            (Some(ours), Some(theirs)) => out.extend(ours.diff(&theirs)),
            (Some(_), None) => out.push(format!("game {game}: the server does not have it")),
            (None, Some(_)) => out.push(format!("game {game}: this side does not have it")),
            (None, None) => {}
        }
        out
    }
}

/// One filled sample of every message (each `Option` set, each list non-empty, so the shape
/// shows what they hold). The matches below have no catch-all: a new message variant does not
/// compile until it has a sample here.
fn messages() -> Vec<(String, Shape)> {
    let view = Some(ViewTime { tick: Tick(1), frac: 1 });
    let client = [
        ClientMessage::Input(InputBatch {
            ack: Some(Tick(1)),
            first_seq: 1,
            frames: vec![1],
            view,
        }),
        ClientMessage::Ping { id: 1, client_time_us: 1 },
        ClientMessage::Chat { text: "t".into() },
        ClientMessage::Leave,
    ];
    let welcome = Welcome {
        protocol: PROTOCOL_VERSION,
        client_id: ClientId(1),
        room: "r".into(),
        game: "g".into(),
        entity: NetId(1),
        tick_rate: 1,
        snapshot_rate: 1,
        tick: Tick(1),
        resume_token: "t".into(),
        registry_fingerprint: 1,
        schema: Box::new(GameSchema {
            game: "g".into(),
            components: vec![ComponentSchema {
                name: "c".into(),
                fields: vec![FieldSchema {
                    name: "f".into(),
                    kind: "int".into(),
                    quantization: "q".into(),
                }],
            }],
            position: Some("c".into()),
            input: Shape::Plain("u8".into()),
        }),
    };
    let snapshot = SnapshotMessage {
        tick: Tick(1),
        baseline: Some(Tick(1)),
        last_input_seq: Some(1),
        inputs_late: 1,
        input_margin: Some(1),
        body: vec![1],
    };
    let server = [
        ServerMessage::Welcome(welcome),
        ServerMessage::Snapshot(snapshot),
        ServerMessage::Pong { id: 1, client_time_us: 1, tick: Tick(1) },
        ServerMessage::Chat { from: NetId(1), name: "n".into(), text: "t".into() },
        ServerMessage::Event(RoomEvent::Joined {
            client: ClientId(1),
            entity: NetId(1),
            name: "n".into(),
        }),
        ServerMessage::Event(RoomEvent::Left { entity: NetId(1), name: "n".into() }),
        ServerMessage::GameEvent { body: vec![1] },
        ServerMessage::Disconnect { reason: DisconnectReason::Moved, message: "m".into() },
    ];
    let mut out = Vec::new();
    for m in &client {
        let name = match m {
            ClientMessage::Input(_) => "client.Input",
            ClientMessage::Ping { .. } => "client.Ping",
            ClientMessage::Chat { .. } => "client.Chat",
            ClientMessage::Leave => "client.Leave",
        };
        out.push((name.to_owned(), shape_of(m)));
    }
    for m in &server {
        let name = match m {
            ServerMessage::Welcome(_) => "server.Welcome",
            ServerMessage::Snapshot(_) => "server.Snapshot",
            ServerMessage::Pong { .. } => "server.Pong",
            ServerMessage::Chat { .. } => "server.Chat",
            ServerMessage::Event(RoomEvent::Joined { .. }) => "server.Event.Joined",
            ServerMessage::Event(RoomEvent::Left { .. }) => "server.Event.Left",
            ServerMessage::GameEvent { .. } => "server.GameEvent",
            ServerMessage::Disconnect { .. } => "server.Disconnect",
        };
        out.push((name.to_owned(), shape_of(m)));
    }
    let reasons = DisconnectReason::ALL.iter().map(|r| Shape::Plain(r.label().to_owned()));
    out.push(("DisconnectReason".to_owned(), Shape::Tuple(reasons.collect())));
    out
}

/// Why a shape could not be recorded (a serializer that refuses).
#[derive(Debug)]
struct Refused(String);

impl fmt::Display for Refused {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Refused {}

impl ser::Error for Refused {
    fn custom<T: fmt::Display>(msg: T) -> Self {
        Refused(msg.to_string())
    }
}

/// A serde serializer that writes nothing and records the shape of what it is given.
struct Recorder;

/// Collects the parts of a compound value.
struct Parts {
    name: Option<String>,
    fields: Vec<(String, Shape)>,
    kind: Compound,
    key: Option<Shape>,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Compound {
    Seq,
    Tuple,
    Named,
    Map,
}

impl Parts {
    fn new(kind: Compound, name: Option<String>) -> Parts {
        Parts { name, fields: Vec::new(), kind, key: None }
    }

    fn named(name: String) -> Parts {
        Parts::new(Compound::Named, Some(name))
    }

    fn push<T: Serialize + ?Sized>(&mut self, field: Option<&str>, value: &T) {
        let shape = shape_of(value);
        let name = field.map_or_else(|| self.fields.len().to_string(), str::to_owned);
        self.fields.push((name, shape));
    }

    fn finish(self) -> Shape {
        match self.kind {
            Compound::Seq => Shape::Seq(self.fields.into_iter().next().map(|(_, s)| Box::new(s))),
            Compound::Tuple => Shape::Tuple(self.fields.into_iter().map(|(_, s)| s).collect()),
            Compound::Named => {
                Shape::Named { name: self.name.unwrap_or_default(), fields: self.fields }
            }
            Compound::Map => {
                let mut it = self.fields.into_iter();
                match (it.next(), it.next()) {
                    (Some((_, k)), Some((_, v))) => Shape::Map(Some(Box::new((k, v)))),
                    _ => Shape::Map(None),
                }
            }
        }
    }
}

macro_rules! plain {
    ($($method:ident: $ty:ty => $name:literal),* $(,)?) => {
        $(fn $method(self, _: $ty) -> Result<Shape, Refused> {
            Ok(Shape::Plain($name.to_owned()))
        })*
    };
}

impl ser::Serializer for Recorder {
    type Ok = Shape;
    type Error = Refused;
    type SerializeSeq = Parts;
    type SerializeTuple = Parts;
    type SerializeTupleStruct = Parts;
    type SerializeTupleVariant = Parts;
    type SerializeMap = Parts;
    type SerializeStruct = Parts;
    type SerializeStructVariant = Parts;

    plain! {
        serialize_bool: bool => "bool",
        serialize_i8: i8 => "i8",
        serialize_i16: i16 => "i16",
        serialize_i32: i32 => "i32",
        serialize_i64: i64 => "i64",
        serialize_u8: u8 => "u8",
        serialize_u16: u16 => "u16",
        serialize_u32: u32 => "u32",
        serialize_u64: u64 => "u64",
        serialize_f32: f32 => "f32",
        serialize_f64: f64 => "f64",
        serialize_char: char => "char",
        serialize_str: &str => "string",
        serialize_bytes: &[u8] => "bytes",
    }

    fn serialize_none(self) -> Result<Shape, Refused> {
        Ok(Shape::Option(None))
    }

    fn serialize_some<T: Serialize + ?Sized>(self, value: &T) -> Result<Shape, Refused> {
        Ok(Shape::Option(Some(Box::new(shape_of(value)))))
    }

    fn serialize_unit(self) -> Result<Shape, Refused> {
        Ok(Shape::Plain("()".to_owned()))
    }

    fn serialize_unit_struct(self, name: &'static str) -> Result<Shape, Refused> {
        Ok(Shape::Plain(name.to_owned()))
    }

    fn serialize_unit_variant(
        self,
        name: &'static str,
        _: u32,
        variant: &'static str,
    ) -> Result<Shape, Refused> {
        Ok(Shape::Plain(format!("{name}::{variant}")))
    }

    fn serialize_newtype_struct<T: Serialize + ?Sized>(
        self,
        name: &'static str,
        value: &T,
    ) -> Result<Shape, Refused> {
        Ok(Shape::Named { name: name.to_owned(), fields: vec![("0".to_owned(), shape_of(value))] })
    }

    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        name: &'static str,
        _: u32,
        variant: &'static str,
        value: &T,
    ) -> Result<Shape, Refused> {
        let fields = vec![("0".to_owned(), shape_of(value))];
        Ok(Shape::Named { name: format!("{name}::{variant}"), fields })
    }

    fn serialize_seq(self, _: Option<usize>) -> Result<Parts, Refused> {
        Ok(Parts::new(Compound::Seq, None))
    }

    fn serialize_tuple(self, _: usize) -> Result<Parts, Refused> {
        Ok(Parts::new(Compound::Tuple, None))
    }

    fn serialize_tuple_struct(self, name: &'static str, _: usize) -> Result<Parts, Refused> {
        Ok(Parts::named(name.to_owned()))
    }

    fn serialize_tuple_variant(
        self,
        name: &'static str,
        _: u32,
        variant: &'static str,
        _: usize,
    ) -> Result<Parts, Refused> {
        Ok(Parts::named(format!("{name}::{variant}")))
    }

    fn serialize_map(self, _: Option<usize>) -> Result<Parts, Refused> {
        Ok(Parts::new(Compound::Map, None))
    }

    fn serialize_struct(self, name: &'static str, len: usize) -> Result<Parts, Refused> {
        self.serialize_tuple_struct(name, len)
    }

    fn serialize_struct_variant(
        self,
        name: &'static str,
        index: u32,
        variant: &'static str,
        len: usize,
    ) -> Result<Parts, Refused> {
        self.serialize_tuple_variant(name, index, variant, len)
    }
}

macro_rules! positional {
    ($($trait:ident :: $method:ident),*) => {
        $(impl ser::$trait for Parts {
            type Ok = Shape;
            type Error = Refused;
            fn $method<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), Refused> {
                self.push(None, value);
                Ok(())
            }
            fn end(self) -> Result<Shape, Refused> {
                Ok(self.finish())
            }
        })*
    };
}

positional!(
    SerializeSeq::serialize_element,
    SerializeTuple::serialize_element,
    SerializeTupleStruct::serialize_field,
    SerializeTupleVariant::serialize_field
);

macro_rules! named {
    ($($trait:ident),*) => {
        $(impl ser::$trait for Parts {
            type Ok = Shape;
            type Error = Refused;
            fn serialize_field<T: Serialize + ?Sized>(
                &mut self,
                key: &'static str,
                value: &T,
            ) -> Result<(), Refused> {
                self.push(Some(key), value);
                Ok(())
            }
            fn end(self) -> Result<Shape, Refused> {
                Ok(self.finish())
            }
        })*
    };
}

named!(SerializeStruct, SerializeStructVariant);

impl ser::SerializeMap for Parts {
    type Ok = Shape;
    type Error = Refused;

    fn serialize_key<T: Serialize + ?Sized>(&mut self, key: &T) -> Result<(), Refused> {
        self.key = Some(shape_of(key));
        Ok(())
    }

    fn serialize_value<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), Refused> {
        if let Some(key) = self.key.take()
            && self.fields.is_empty()
        {
            self.fields.push(("key".to_owned(), key));
            self.push(Some("value"), value);
        }
        Ok(())
    }

    fn end(self) -> Result<Shape, Refused> {
        Ok(self.finish())
    }
}

#[cfg(test)]
mod tests;
