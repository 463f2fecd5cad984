#pragma once
// What ebbctl prints, as pure functions of the API's messages: the ps table, the node summary,
// inspect's details and the decisions explained in words.
#include <string>

#include "ebb/v1/node.pb.h"

namespace ebb::cli {

std::string cores(double value);                 // "0.25"
std::string cpu_limit(const v1::Limits& limits); // "0.50" or "max"
std::string percent(double fraction);            // "12.5%"
std::string mode_name(v1::Mode mode);            // "auto", "recommend", "off"
std::string priority_name(v1::PriorityClass priority);
std::string event_kind_name(v1::EventKind kind); // "decision", "oom-kill", ...

std::string ps_table(const v1::ListContainersResponse& list);
std::string node_summary(const v1::Node& node);
std::string inspect(const v1::ContainerDetail& detail);
// One sentence: when, who decided what, from what, why, and whether it was written.
std::string explain(const v1::Decision& decision);
std::string event_line(const v1::Event& event);

// protobuf's JSON mapping, one object per line (-o json).
std::string to_json(const google::protobuf::Message& message);

}  // namespace ebb::cli
