//! The demo catalog a new database starts with: home goods, the first of which is the
//! barbecue of the classic race (two admins, one price change, one stock change).

use catalog_shared::product::{ProductFields, Status};

use crate::storage::{Storage, StoreError};

const SEED: &[(&str, &str, i64, Status, &str)] = &[
    (
        "BBQ-KETTLE-57",
        "Kettle charcoal BBQ, 57 cm",
        39900,
        Status::InStock,
        "Porcelain-enamelled bowl and lid, hinged cooking grate, ash catcher.",
    ),
    (
        "LAMP-ARC-01",
        "Arc floor lamp, brushed steel",
        18900,
        Status::InStock,
        "Marble base, dimmable E27 socket, 2 m reach.",
    ),
    (
        "KETTLE-GOOSE-1L",
        "Gooseneck kettle, 1 l",
        7450,
        Status::InStock,
        "Stainless steel, temperature dial 40-100 C.",
    ),
    (
        "RUG-WOOL-160",
        "Hand-tufted wool rug, 160x230",
        32900,
        Status::OutOfStock,
        "New Zealand wool, cotton backing.",
    ),
    (
        "PAN-CAST-26",
        "Cast-iron skillet, 26 cm",
        4500,
        Status::InStock,
        "Pre-seasoned, oven-safe to 260 C.",
    ),
    (
        "CHAIR-OAK-DIN",
        "Oak dining chair",
        14900,
        Status::InStock,
        "Solid oak, oiled finish, paper-cord seat.",
    ),
    (
        "TOWEL-LINEN-4",
        "Linen bath towels, set of 4",
        8900,
        Status::InStock,
        "Stonewashed European linen.",
    ),
    (
        "KNIFE-CHEF-20",
        "Chef's knife, 20 cm",
        11900,
        Status::InStock,
        "VG-10 steel core, walnut handle.",
    ),
    (
        "POT-DUTCH-5L",
        "Enamelled Dutch oven, 5 l",
        21900,
        Status::InStock,
        "Cast iron, cherry-red enamel.",
    ),
    (
        "SHELF-WALL-80",
        "Floating wall shelf, 80 cm",
        3900,
        Status::InStock,
        "Ash veneer, hidden bracket.",
    ),
    (
        "CANDLE-SOY-3",
        "Soy candles, set of 3",
        2900,
        Status::Discontinued,
        "Cedar, fig and sea salt.",
    ),
    (
        "MUG-STONE-2",
        "Stoneware mugs, pair",
        2400,
        Status::InStock,
        "Reactive glaze, 350 ml.",
    ),
    (
        "BLANKET-MERINO",
        "Merino throw blanket",
        13900,
        Status::InStock,
        "130x180 cm, fringed edges.",
    ),
    (
        "GRINDER-BURR",
        "Conical burr coffee grinder",
        16900,
        Status::OutOfStock,
        "40 grind settings, steel burrs.",
    ),
    (
        "BOARD-WALNUT-L",
        "Walnut cutting board, large",
        7900,
        Status::InStock,
        "End-grain, 45x30 cm.",
    ),
    (
        "MIRROR-ROUND-60",
        "Round wall mirror, 60 cm",
        9900,
        Status::InStock,
        "Thin brass frame.",
    ),
    (
        "SHEETS-PERCALE-D",
        "Percale sheet set, double",
        12900,
        Status::InStock,
        "Organic cotton, 300 thread count.",
    ),
    (
        "PLANTER-TERRA-30",
        "Terracotta planter, 30 cm",
        3400,
        Status::InStock,
        "Unglazed, with saucer.",
    ),
    (
        "STOOL-STEP-2",
        "Two-step stool",
        5900,
        Status::InStock,
        "Beech, folds flat.",
    ),
    (
        "VASE-GLASS-TALL",
        "Tall glass vase",
        4200,
        Status::InStock,
        "Mouth-blown, smoke grey.",
    ),
    (
        "CLOCK-WALL-30",
        "Wall clock, 30 cm",
        6500,
        Status::Discontinued,
        "Silent sweep movement.",
    ),
    (
        "BASKET-SEAGRASS",
        "Seagrass storage basket",
        3600,
        Status::InStock,
        "Hand-woven, with handles.",
    ),
    (
        "HOOK-BRASS-5",
        "Brass wall hooks, 5 pack",
        2800,
        Status::InStock,
        "Solid brass, screws included.",
    ),
    (
        "TRAY-SERVE-OAK",
        "Oak serving tray",
        5400,
        Status::InStock,
        "Cut-out handles, 50x35 cm.",
    ),
    (
        "FAN-DESK-QUIET",
        "Quiet desk fan",
        8900,
        Status::OutOfStock,
        "Three speeds, 26 dB at low.",
    ),
];

/// Creates the demo products, as the user `seed`.
pub async fn seed(store: &dyn Storage) -> Result<usize, StoreError> {
    for (sku, name, price_cents, status, description) in SEED {
        store
            .create(
                ProductFields {
                    sku: (*sku).into(),
                    name: (*name).into(),
                    description: (*description).into(),
                    price_cents: *price_cents,
                    status: *status,
                },
                "seed".into(),
                None,
            )
            .await?;
    }
    Ok(SEED.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_seed_product_is_valid() {
        for (sku, name, price, status, description) in SEED {
            let json = serde_json::json!({"sku": sku, "name": name, "price_cents": price, "status": status, "description": description});
            assert!(
                catalog_shared::product::validate_json(&json).is_ok(),
                "{sku}"
            );
        }
    }
}
