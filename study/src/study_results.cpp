// The scheduler and the results files of a study (study_tasks.h).
#include <algorithm>
#include <filesystem>
#include <sstream>

#include "study_tasks.h"
#include "tilescale/core/atomic_file.h"
#include "tilescale/core/error.h"

namespace tilescale::study {

const std::vector<std::string>& study_columns(bool timing) {
  static const std::vector<std::string> with_timing = {"point_id",
                                                       "model",
                                                       "dataset",
                                                       "kind",
                                                       "arch",
                                                       "arch_kind",
                                                       "w_bits",
                                                       "a_bits",
                                                       "first_last",
                                                       "granularity",
                                                       "reorder",
                                                       "search",
                                                       "seed",
                                                       "scale_bits",
                                                       "executor",
                                                       "images",
                                                       "top1",
                                                       "top1_ideal",
                                                       "scales",
                                                       "layers",
                                                       "bits_per_weight",
                                                       "cycles",
                                                       "macs",
                                                       "utilization",
                                                       "scale_registers",
                                                       "area_um2",
                                                       "scale_area_um2",
                                                       "adc_bits",
                                                       "energy_bound_pj",
                                                       "sim_images",
                                                       "sim_top1",
                                                       "sim_cycles",
                                                       "sim_mismatches",
                                                       "sim_energy_pj",
                                                       "verify_images",
                                                       "verify_top1",
                                                       "verify_cycles",
                                                       "verify_mismatches",
                                                       "error",
                                                       "quant_key",
                                                       "tool_version",
                                                       "git_commit",
                                                       "model_sha256",
                                                       "bundle_sha256",
                                                       "arch_sha256",
                                                       "quantize_seconds",
                                                       "eval_seconds",
                                                       "map_seconds",
                                                       "sim_seconds",
                                                       "verify_seconds"};
  static const std::vector<std::string> without_timing(with_timing.begin(), with_timing.end() - 5);
  return timing ? with_timing : without_timing;
}

namespace detail {

Scheduler::Scheduler(const Study& study, const std::vector<bool>& done_points) : study_(study) {
  std::vector<bool> queued(study.quants.size(), false);
  for (const StudyPoint& p : study.points) {
    if (done_points[p.id]) continue;
    ++pending_;
    if (p.quant < 0) {
      ready_.push_back(p.id);
      continue;
    }
    if (!queued[p.quant]) quants_.push_back(p.quant);
    queued[p.quant] = true;
    waiting_[p.quant].push_back(p.id);
  }
}

std::optional<Task> Scheduler::next() {
  if (!ready_.empty()) {
    const int64_t id = ready_.front();
    ready_.pop_front();
    ++in_flight_;
    return Task{false, id};
  }
  if (!quants_.empty()) {
    const int64_t q = quants_.front();
    quants_.pop_front();
    ++in_flight_;
    return Task{true, q};
  }
  return std::nullopt;
}

std::vector<int64_t> Scheduler::quant_done(int64_t quant, bool failed) {
  --in_flight_;
  std::vector<int64_t> points = std::move(waiting_[quant]);
  waiting_.erase(quant);
  if (failed) return points;
  for (int64_t id : points) ready_.push_back(id);
  return {};
}

ResultsStore::ResultsStore(std::string out_dir, bool timing, std::size_t points)
    : out_dir_(std::move(out_dir)), timing_(timing), points_(points) {}

void ResultsStore::load() {
  const std::string path = out_dir_ + "/results.jsonl";
  if (!std::filesystem::exists(path)) return;
  std::stringstream in(read_file(path));
  std::string line;
  int64_t n = 0;
  while (std::getline(in, line)) {
    ++n;
    ojson row;
    try {
      row = ojson::parse(line);
    } catch (const nlohmann::json::exception& e) {
      fail_input(path, "line " + std::to_string(n) + ": bad JSON: " + e.what());
    }
    if (!row.is_object() || !row.contains("point_id") || !row["point_id"].is_number_integer() ||
        row["point_id"].get<int64_t>() < 0 ||
        row["point_id"].get<int64_t>() >= static_cast<int64_t>(points_))
      fail_input(path, "line " + std::to_string(n) + ": not a row of this study");
    rows_[row["point_id"].get<int64_t>()] = row;
  }
}

int64_t ResultsStore::failed() const {
  return std::count_if(rows_.begin(), rows_.end(),
                       [](const auto& r) { return !r.second["error"].is_null(); });
}

void ResultsStore::add(const ojson& row) {
  rows_[row["point_id"].get<int64_t>()] = row;
  write_file_atomic(out_dir_ + "/results.jsonl", jsonl());
  write_file_atomic(out_dir_ + "/results.csv", csv());
}

namespace {

// RFC 4180: a field holding a comma, a quote or a line break is quoted, its quotes doubled; null
// is an empty field.
std::string csv_field(const ojson& v) {
  if (v.is_null()) return "";
  if (!v.is_string()) return v.dump();
  const std::string& s = v.get_ref<const std::string&>();
  if (s.find_first_of(",\"\r\n") == std::string::npos) return s;
  std::string q = "\"";
  for (char c : s) q += c == '"' ? std::string("\"\"") : std::string(1, c);
  return q + "\"";
}

}  // namespace

std::string ResultsStore::csv() const {
  const auto& columns = study_columns(timing_);
  std::string text;
  for (std::size_t c = 0; c < columns.size(); ++c) text += (c ? "," : "") + columns[c];
  text += "\n";
  for (const auto& [id, row] : rows_) {
    for (std::size_t c = 0; c < columns.size(); ++c)
      text += (c ? "," : "") + csv_field(row.contains(columns[c]) ? row[columns[c]] : ojson());
    text += "\n";
  }
  return text;
}

std::string ResultsStore::jsonl() const {
  std::string text;
  for (const auto& [id, row] : rows_) {
    // Fixed key order: schema_version, the columns, quant_options; timing dropped if off.
    ojson out;
    out["schema_version"] = row.value("schema_version", ojson(kStudySchemaVersion));
    for (const std::string& c : study_columns(timing_)) out[c] = row.contains(c) ? row[c] : ojson();
    out["quant_options"] = row.contains("quant_options") ? row["quant_options"] : ojson();
    text += out.dump() + "\n";
  }
  return text;
}

}  // namespace detail
}  // namespace tilescale::study
