use super::*;
use crate::games::arena::ArenaGame;
use crate::games::soccer::SoccerGame;

#[test]
fn a_game_is_described_with_its_fields_and_quantization() {
    let arena = GameSchema::of::<ArenaGame>();
    assert_eq!(arena.game, "arena");
    assert_eq!(arena.position.as_deref(), Some("Position"));
    let names: Vec<&str> = arena.components.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(
        names,
        ["Position", "Kind", "Aim", "Health", "Score", "Dash", "Launched", "tickwire.motion"]
    );
    let health = &arena.components[3].fields[0];
    assert_eq!((health.name.as_str(), health.kind.as_str()), ("health", "int"));
    assert_eq!(health.quantization, "f32 rounded, in 0..=255");
    assert_eq!(arena.components[2].fields[0].kind, "angle");
    // The input's shape comes from the type itself.
    let input = arena.input.to_string();
    assert!(
        input.starts_with("ArenaInput { movement: (i8, i8), aim: u16, buttons: Buttons"),
        "{input}"
    );
    assert!(GameSchema::of::<SoccerGame>().diff(&GameSchema::of::<SoccerGame>()).is_empty());
}

/// Every kind of change a game developer makes shows as a line that names it.
#[test]
fn what_differs_is_named() {
    let server = GameSchema::of::<ArenaGame>();
    let mut client = server.clone();
    client.components.retain(|c| c.name != "Dash");
    client.components[3].fields[0].quantization = "u8".into();
    client.components[4].fields.push(FieldSchema {
        name: "assists".into(),
        kind: "int".into(),
        quantization: "u16".into(),
    });
    client.components[2].fields[0].kind = "int".into();
    client.components.swap(0, 1);
    client.components.push(ComponentSchema { name: "Shield".into(), fields: Vec::new() });
    let diff = client.diff(&server);
    let expected = [
        "component Aim: field aim is int here, angle on the server",
        "component Health: field health quantized as u8 here, as f32 rounded, in 0..=255 on the server",
        "component Score: field assists only here",
        "component Shield: only here",
        "component Dash: only on the server",
        "component order: Kind, Position, Aim, Health, Score, Launched, tickwire.motion here, \
         Position, Kind, Aim, Health, Score, Launched, tickwire.motion on the server",
    ];
    for line in expected {
        assert!(diff.iter().any(|d| d == line), "missing {line:?} in {diff:#?}");
    }
    assert_eq!(diff.len(), expected.len(), "{diff:#?}");
    let other = GameSchema::of::<SoccerGame>();
    assert_eq!(client.diff(&other), ["game: \"arena\" here, \"soccer\" on the server"]);
}

#[test]
fn messages_are_described_from_their_types() {
    let schema = Schema::current();
    assert_eq!(schema.protocol, PROTOCOL_VERSION);
    assert_eq!(schema.games.len(), crate::games::ALL.len());
    let welcome = &schema.messages.iter().find(|(n, _)| n == "server.Welcome").unwrap().1;
    let text = welcome.to_string();
    assert!(text.contains("tick: Tick { 0: u32 }"), "{text}");
    assert!(text.contains("schema: GameSchema {"), "{text}");
    let snapshot = &schema.messages.iter().find(|(n, _)| n == "server.Snapshot").unwrap().1;
    assert!(snapshot.to_string().contains("input_margin: Option<i16>"), "{snapshot}");
    assert!(schema.diff(&schema, "arena").is_empty());

    // Another build: a newer protocol whose snapshot gained a field and lost one.
    let mut server = schema.clone();
    server.protocol += 1;
    for (name, shape) in &mut server.messages {
        if name == "server.Snapshot"
            && let Shape::Named { fields, .. } = shape
            && let Some((_, Shape::Named { fields: inner, .. })) = fields.first_mut()
        {
            inner.retain(|(f, _)| f != "inputs_late");
            inner.push(("budget".into(), Shape::Plain("u16".into())));
        }
    }
    server.games.retain(|g| g.game != "soccer");
    let diff = schema.diff(&server, "soccer");
    assert_eq!(
        diff,
        [
            format!(
                "protocol: version {} here, {} on the server",
                PROTOCOL_VERSION,
                PROTOCOL_VERSION + 1
            ),
            "message server.Snapshot.0: field inputs_late only here".to_owned(),
            "message server.Snapshot.0: field budget only on the server".to_owned(),
            "game soccer: the server does not have it".to_owned(),
        ]
    );
    // It travels as JSON (GET /api/schema) and as bincode (the browser) unchanged.
    let json = serde_json::to_string(&schema).unwrap();
    assert_eq!(serde_json::from_str::<Schema>(&json).unwrap(), schema);
    let bytes = crate::persist::encode(&schema).unwrap();
    assert_eq!(crate::persist::decode::<Schema>(&bytes).unwrap(), schema);
}
