// The netns test's JSON reader (the test machine has no jq):
//   manager_json_probe get FILE POINTER        value at the JSON pointer, "" when missing
//   manager_json_probe node-share FILE NODE GROUP [FIELD]   from `ebb-manager nodes`: the
//                                              node's allocation for the group (FIELD cpuCores,
//                                              the default, or memoryBytes), "" when none
//   manager_json_probe rounds FILE             from `ebb-manager watch` lines: "ROUNDS OVER MAX
//                                              MISSED" (rounds seen, group-rounds above budget,
//                                              largest sum, rounds skipped between those seen)
// FILE "-" is stdin.
#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>

using nlohmann::json;

namespace {

std::string text_of(const std::string& file) {
  if (file == "-") return {std::istreambuf_iterator<char>(std::cin), {}};
  std::ifstream in(file);
  return {std::istreambuf_iterator<char>(in), {}};
}

void print(const json& v) {
  if (v.is_string()) std::cout << v.get<std::string>() << "\n";
  else std::cout << v.dump() << "\n";
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 3) {
    std::cerr << "usage: manager_json_probe get|node-share|rounds FILE ...\n";
    return 2;
  }
  const std::string mode = argv[1];
  const std::string text = text_of(argv[2]);
  if (mode == "rounds") {
    long rounds = 0, over = 0, missed = 0, last = -1;
    double max_sum = 0;
    std::istringstream lines(text);
    for (std::string line; std::getline(lines, line);) {
      const json round = json::parse(line, nullptr, false);
      if (round.is_discarded()) continue;
      ++rounds;
      // Round numbers are strings in protobuf's JSON (uint64).
      const long number = std::stol(round.value("round", std::string("0")));
      if (last >= 0 && number > last + 1) missed += number - last - 1;
      last = number;
      for (const auto& g : round.value("groups", json::array())) {
        const double sum = g.value("allocatedCpuCores", 0.0);
        max_sum = std::max(max_sum, sum);
        if (sum > g.value("cpuCores", 0.0) + 1e-9) ++over;
      }
    }
    std::cout << rounds << " " << over << " " << max_sum << " " << missed << "\n";
    return 0;
  }
  const json doc = json::parse(text, nullptr, false);
  if (doc.is_discarded()) return 1;  // a file caught mid-rename reads as nothing
  if (mode == "get" && argc == 4) {
    const json::json_pointer pointer(argv[3]);
    if (doc.contains(pointer)) print(doc.at(pointer));
    return 0;
  }
  if (mode == "node-share" && (argc == 5 || argc == 6)) {
    const std::string field = argc == 6 ? argv[5] : "cpuCores";
    for (const auto& n : doc.value("nodes", json::array()))
      if (n.value("nodeId", "") == argv[3])
        for (const auto& a : n.value("allocated", json::array()))
          if (a.value("group", "") == argv[4]) print(a.value(field, json(0)));
    return 0;
  }
  std::cerr << "manager_json_probe: bad arguments\n";
  return 2;
}
