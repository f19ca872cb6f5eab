//! The demo catalog `bazaar up` starts with (unless `--no-demo`): realistic products in six
//! categories, priced in US dollars. Stock for them is set by the inventory service.

/// One demo product, as plain data (validated when seeded).
#[derive(Debug, Clone, Copy)]
pub struct DemoProduct {
    /// The SKU, `<category prefix>-<number>`.
    pub sku: &'static str,
    /// The display name.
    pub name: &'static str,
    /// The description.
    pub description: &'static str,
    /// The category slug.
    pub category: &'static str,
    /// The price in US cents.
    pub price_minor: i64,
}

const fn p(
    sku: &'static str,
    name: &'static str,
    category: &'static str,
    price_minor: i64,
    description: &'static str,
) -> DemoProduct {
    DemoProduct {
        sku,
        name,
        description,
        category,
        price_minor,
    }
}

/// The demo products, in the order a newest-first list shows them.
pub static PRODUCTS: &[DemoProduct] = &[
    // Books
    p("BK-1001", "The Pragmatic Programmer, 20th Anniversary Edition", "books", 4499,
      "Hardcover. Timeless advice on writing flexible, maintainable code, from tracer bullets to orthogonality."),
    p("BK-1002", "Designing Data-Intensive Applications", "books", 5299,
      "Paperback. The big ideas behind reliable, scalable and maintainable data systems."),
    p("BK-1003", "Salt, Fat, Acid, Heat", "books", 3500,
      "Hardcover cookbook with illustrations: master the four elements of good cooking."),
    p("BK-1004", "The Hobbit (Illustrated Edition)", "books", 2899,
      "Hardcover with colour illustrations. Bilbo Baggins' unexpected journey, for readers of all ages."),
    p("BK-1005", "A Field Guide to North American Birds", "books", 2450,
      "Flexibound. More than 800 species with range maps and 3,000 illustrations; fits in a jacket pocket."),
    // Kitchen
    p("KT-2001", "Cast Iron Skillet, 10.25 in", "kitchen", 3495,
      "Pre-seasoned cast iron skillet for searing, baking and campfire cooking. Oven safe to 500 °F."),
    p("KT-2002", "Chef's Knife, 8 in, German Steel", "kitchen", 8900,
      "Full-tang, forged high-carbon stainless steel blade with a triple-riveted handle."),
    p("KT-2003", "Enameled Dutch Oven, 5.5 qt", "kitchen", 7999,
      "Enameled cast iron with a tight-fitting lid for braises, stews and no-knead bread."),
    p("KT-2004", "End-Grain Walnut Cutting Board", "kitchen", 6450,
      "Large end-grain board, 18 x 12 in, gentle on knife edges. Finished with food-safe mineral oil."),
    p("KT-2005", "Digital Kitchen Scale", "kitchen", 2299,
      "Weighs up to 11 lb in 0.05 oz steps, with tare function and a stainless steel platform."),
    // Outdoors
    p("OD-3001", "Ultralight Backpacking Tent, 2-Person", "outdoors", 32900,
      "Freestanding three-season tent weighing 3 lb 2 oz, with two doors and two vestibules."),
    p("OD-3002", "Down Sleeping Bag, 20 °F", "outdoors", 27900,
      "650-fill-power responsibly sourced down, water-resistant shell, compression sack included."),
    p("OD-3003", "Insulated Water Bottle, 32 oz", "outdoors", 3995,
      "Double-wall vacuum-insulated stainless steel: cold for 24 hours, hot for 12. Leakproof cap."),
    p("OD-3004", "Trekking Poles, Carbon, Pair", "outdoors", 11995,
      "Collapsible carbon-fibre poles with cork grips and quick-lock adjustment from 41 to 51 in."),
    p("OD-3005", "Headlamp, 400 Lumens, Rechargeable", "outdoors", 4495,
      "USB-C rechargeable headlamp with red night-vision mode and IPX4 weather resistance."),
    // Electronics
    p("EL-4001", "Noise-Cancelling Wireless Headphones", "electronics", 24999,
      "Over-ear Bluetooth headphones with adaptive noise cancelling and 30-hour battery life."),
    p("EL-4002", "Mechanical Keyboard, 75% Layout", "electronics", 12900,
      "Hot-swappable switches, PBT keycaps, aluminium case; connects by USB-C or Bluetooth."),
    p("EL-4003", "USB-C Charger, 65 W, 3 Ports", "electronics", 4999,
      "Compact GaN charger with two USB-C ports and one USB-A port; charges a laptop and a phone together."),
    p("EL-4004", "E-Reader, 6.8 in Glare-Free Display", "electronics", 14999,
      "Adjustable warm light, 300 ppi, waterproof (IPX8), weeks of battery life on a single charge."),
    p("EL-4005", "Portable Bluetooth Speaker", "electronics", 7999,
      "Waterproof and dustproof speaker with 12 hours of playtime and a built-in strap."),
    // Toys
    p("TY-5001", "Wooden Railway Starter Set, 52 Pieces", "toys", 5999,
      "Beech-wood tracks, a bridge, a tunnel and two magnetic trains. For ages 3 and up."),
    p("TY-5002", "Building Bricks Classic Box, 900 Pieces", "toys", 5499,
      "Bricks in 33 colours with idea booklet, compatible with major brick brands. Ages 4 and up."),
    p("TY-5003", "1000-Piece Jigsaw Puzzle: Alpine Lake", "toys", 1999,
      "Finished size 27 x 20 in. Thick recycled board with a linen finish and a poster for reference."),
    p("TY-5004", "Plush Red Panda, 14 in", "toys", 2499,
      "Super-soft plush with embroidered eyes, surface washable. Suitable from birth."),
    p("TY-5005", "Strategy Board Game: Island Settlers", "toys", 4400,
      "Trade, build and settle: a classic for 3 to 4 players, ages 10 and up, 60 to 90 minutes."),
    // Coffee
    p("CF-6001", "Ethiopia Yirgacheffe Whole Beans, 12 oz", "coffee", 1799,
      "Light roast single origin with notes of bergamot, jasmine and lemon. Roasted to order."),
    p("CF-6002", "Colombia Huila Whole Beans, 12 oz", "coffee", 1649,
      "Medium roast with notes of caramel, red apple and milk chocolate."),
    p("CF-6003", "Stovetop Moka Pot, 6 Cup", "coffee", 3999,
      "Classic aluminium espresso maker for gas and electric stoves. Makes 6 demitasse cups."),
    p("CF-6004", "Burr Coffee Grinder", "coffee", 13900,
      "Conical steel burrs with 40 grind settings, from espresso to French press."),
    p("CF-6005", "Pour-Over Coffee Dripper Set", "coffee", 3450,
      "Ceramic dripper, glass server and 100 paper filters for a clean, bright cup."),
];

/// The stock `bazaar up` gives every demo product.
pub const DEMO_STOCK: i64 = 100;
