//! Generated run names in MLflow's `adjective-animal-NNN` style.

use rand::Rng;
use rand::seq::IndexedRandom;

const ADJECTIVES: &[&str] = &[
    "abundant",
    "able",
    "agreeable",
    "ambitious",
    "amazing",
    "auspicious",
    "bold",
    "brave",
    "bright",
    "bustling",
    "calm",
    "capable",
    "carefree",
    "casual",
    "classy",
    "clean",
    "clever",
    "colorful",
    "crawling",
    "dapper",
    "debonair",
    "delicate",
    "dazzling",
    "efficient",
    "enchanting",
    "entertaining",
    "fearless",
    "funny",
    "gentle",
    "gifted",
    "glamorous",
    "graceful",
    "honorable",
    "industrious",
    "intelligent",
    "judicious",
    "kindly",
    "languid",
    "learned",
    "legendary",
    "likeable",
    "loud",
    "luminous",
    "magnificent",
    "marvelous",
    "mercurial",
    "nebulous",
    "omniscient",
    "painted",
    "peaceful",
    "placid",
    "polite",
    "puzzled",
    "redolent",
    "resilient",
    "rogue",
    "rumbling",
    "selective",
    "sincere",
    "skillful",
    "smiling",
    "spiffy",
    "stylish",
    "suave",
    "bemused",
    "thoughtful",
    "thundering",
    "tireless",
    "trusting",
    "unequaled",
    "upbeat",
    "valuable",
    "victorious",
    "vaunted",
    "welcoming",
    "wise",
    "worried",
    "youthful",
];

const ANIMALS: &[&str] = &[
    "ant", "ape", "asp", "bass", "bat", "bear", "bee", "bird", "boar", "bug", "calf", "carp",
    "cat", "chimp", "cod", "colt", "conch", "cow", "crab", "crane", "croc", "crow", "cub", "deer",
    "doe", "dog", "dolphin", "donkey", "dove", "duck", "eel", "elk", "fawn", "finch", "fish",
    "flea", "fly", "foal", "fowl", "fox", "frog", "gnat", "gnu", "goat", "goose", "grouse", "grub",
    "gull", "hare", "hawk", "hen", "hog", "horse", "hound", "jay", "kit", "kite", "koi", "lamb",
    "lark", "loon", "lynx", "mare", "midge", "mink", "mole", "moose", "moth", "mouse", "mule",
    "newt", "owl", "ox", "panda", "penguin", "perch", "pig", "pug", "quail", "ram", "rat", "ray",
    "robin", "roo", "rook", "seal", "shad", "shark", "sheep", "shoat", "shrew", "shrike", "shrimp",
    "skink", "skunk", "sloth", "slug", "smelt", "snail", "snake", "snipe", "sow", "sponge",
    "squid", "squirrel", "stag", "steed", "stoat", "stork", "swan", "tern", "toad", "trout",
    "turtle", "vole", "wasp", "whale", "wolf", "worm", "wren", "yak", "zebra",
];

/// Returns a fresh random run name such as `thoughtful-cub-692`.
pub fn random_run_name() -> String {
    let mut rng = rand::rng();
    let adjective = ADJECTIVES.choose(&mut rng).copied().unwrap_or("able");
    let animal = ANIMALS.choose(&mut rng).copied().unwrap_or("ant");
    let number: u32 = rng.random_range(0..1000);
    format!("{adjective}-{animal}-{number}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_have_three_parts() {
        let name = random_run_name();
        let parts: Vec<&str> = name.split('-').collect();
        assert_eq!(parts.len(), 3, "{name}");
        assert!(parts[2].parse::<u32>().unwrap() < 1000);
    }
}
