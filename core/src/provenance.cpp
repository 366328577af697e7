#include "tilescale/core/provenance.h"

#include "git_commit.h"
#include "tilescale/core/atomic_file.h"
#include "tilescale/core/sha256.h"
#include "tilescale/core/version.h"

namespace tilescale {

const char* git_commit() { return TILESCALE_GIT_COMMIT; }

std::string bundle_sha256(const std::string& bundle_dir) {
  return sha256_hex(read_file(bundle_dir + "/manifest.json"));
}

nlohmann::ordered_json provenance(const std::string& bundle_sha256, const std::string& arch_sha256,
                                  const std::string& model_sha256) {
  nlohmann::ordered_json p;
  p["tool"] = "tilescale";
  p["tool_version"] = kToolVersion;
  p["git_commit"] = git_commit();
  if (!model_sha256.empty()) p["model_sha256"] = model_sha256;
  if (!bundle_sha256.empty()) p["bundle_sha256"] = bundle_sha256;
  if (!arch_sha256.empty()) p["arch_sha256"] = arch_sha256;
  return p;
}

nlohmann::ordered_json with_provenance(const nlohmann::ordered_json& report,
                                       const nlohmann::ordered_json& provenance) {
  nlohmann::ordered_json j;
  j["schema_version"] = kReportSchemaVersion;
  j["provenance"] = provenance;
  for (auto it = report.begin(); it != report.end(); ++it)
    if (it.key() != "schema_version" && it.key() != "provenance") j[it.key()] = it.value();
  return j;
}

}  // namespace tilescale
