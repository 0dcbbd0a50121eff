#pragma once
// Internal to src/cli: the one option parser every `vidfeat` command uses (Boost.Program_options).
// A command declares its options and positional arguments, calls parse(), and gets either its
// variables filled, `false` after --help, or an Error that names the command.
#include <boost/program_options.hpp>
#include <string>
#include <vector>

namespace vidfeat::cli {

namespace po = boost::program_options;

class CommandOptions {
 public:
  // `command` is the command's name ("extract"), used in errors; `caption` says what it does and
  // how it is called, printed above the options by --help. --help (-h) is added here.
  CommandOptions(std::string command, const std::string& caption);

  // Declares options, as Boost's add_options() chain: add()("name", po::value(&x), "what").
  po::options_description_easy_init add() { return options_.add_options(); }
  // Arguments without an option name go to option `name` (at most `count`; -1: all of them).
  CommandOptions& positional(const char* name, int count = 1);

  // Parses `argv` into the variables the options are bound to. Returns false when --help was
  // given (the help is printed on stdout when `printHelp`: rank 0 only under MPI). For an
  // unknown option, a malformed value or a missing required one it throws CollectiveError (every
  // rank parses the same arguments): "vidfeat COMMAND: <what> (vidfeat COMMAND --help lists the
  // options)".
  bool parse(const std::vector<std::string>& argv, bool printHelp = true);

 private:
  std::string command_;
  po::options_description options_;
  po::positional_options_description positional_;
};

}  // namespace vidfeat::cli
