// Provenance of every JSON report tilescale writes (eval, quantize, map, simulate, study rows): the
// report schema's version, the tool version and git commit of the binary, and the SHA-256 of the
// inputs that decide the numbers. Schemas: docs/reports.md.
#pragma once

#include <nlohmann/json.hpp>
#include <string>

namespace tilescale {

// Version of the report schemas of docs/reports.md; raised when a key changes meaning or goes away
// (new keys alone do not raise it), so old results stay readable.
inline constexpr int kReportSchemaVersion = 1;

// `git rev-parse HEAD` of the source tree at build time, "-dirty" appended when the work tree
// differed from it, or "unknown" when built outside a git checkout.
const char* git_commit();

// SHA-256 of a bundle directory: of its manifest.json, which records the SHA-256 of the model and
// of every blob, so it fixes every byte of the bundle (docs/bundle.md). Throws InputError naming
// the file if it cannot be read.
std::string bundle_sha256(const std::string& bundle_dir);

// {"tool": "tilescale", "tool_version", "git_commit"} plus "bundle_sha256", "arch_sha256" and
// "model_sha256" for each argument that is not empty.
nlohmann::ordered_json provenance(const std::string& bundle_sha256 = "",
                                  const std::string& arch_sha256 = "",
                                  const std::string& model_sha256 = "");

// Puts "schema_version" and "provenance" first in a report object (the other keys keep their
// order), so every report starts the same way.
nlohmann::ordered_json with_provenance(const nlohmann::ordered_json& report,
                                       const nlohmann::ordered_json& provenance);

}  // namespace tilescale
