// QuantOptions as JSON: one table maps each option's key (the bundle manifest's field name) to the
// QuantOptions member, so the study driver reads the very struct `tilescale quantize` fills, and an
// option added to the table is at once a study axis and part of the study's cache key.
#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "tilescale/quant/quantized_model.h"

namespace tilescale::quant {

// The keys, in the order quant_options_json writes them. "threads" is not one: it changes no
// result (bundles are byte-identical whatever the thread count).
const std::vector<std::string>& quant_option_keys();

// Sets one option from a JSON scalar (numbers for the numeric options, strings for granularity and
// the enums). Throws InputError "<key>: <problem>" for an unknown key, a value of the wrong type or
// an unknown name; range checks are QuantOptions::validate's.
void set_quant_option(QuantOptions& o, const std::string& key, const nlohmann::json& value);

// Every option of quant_option_keys() with its value, in that order: the canonical form used for
// cache keys and study rows.
nlohmann::ordered_json quant_options_json(const QuantOptions& o);

}  // namespace tilescale::quant
