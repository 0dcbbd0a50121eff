#include "options.h"

#include <iostream>
#include <utility>

#include "vidfeat/common/error.h"

namespace vidfeat::cli {

CommandOptions::CommandOptions(std::string command, const std::string& caption)
    : command_(std::move(command)), options_(caption + "\n\noptions") {
  options_.add_options()("help,h", "show this help");
}

CommandOptions& CommandOptions::positional(const char* name, int count) {
  positional_.add(name, count);
  return *this;
}

bool CommandOptions::parse(const std::vector<std::string>& argv, bool printHelp) {
  po::variables_map values;
  try {
    po::store(po::command_line_parser(argv).options(options_).positional(positional_).run(),
              values);
    if (values.count("help")) {
      if (printHelp) std::cout << options_ << "\n";
      return false;
    }
    po::notify(values);
  } catch (const po::error& e) {
    // Every rank parses the same arguments and fails alike: they can exit in step (main()).
    throw CollectiveError("vidfeat " + command_ + ": " + e.what() + " (vidfeat " + command_ +
                          " --help lists the options)");
  }
  return true;
}

}  // namespace vidfeat::cli
