#include <boost/program_options.hpp>

#include <iostream>

#include "vidfeat/cli/commands.h"
#include "vidfeat/common/log.h"
#include "vidfeat/store/merge.h"

namespace vidfeat::cli {

namespace po = boost::program_options;

int mergeCommand(const std::vector<std::string>& argv) {
  std::vector<std::string> parts;
  std::string output;
  bool overwrite = false;
  po::options_description opts(
      "vidfeat merge PART... -o OUT: join the part files of a job array (extract --shard K/N) into\n"
      "one file. Parts must come from the same model, config, checkpoint and clip settings and\n"
      "must not share a video id.\n\noptions");
  opts.add_options()("help,h", "show this help")("output,o", po::value(&output)->required(), "merged file")(
      "part", po::value(&parts)->composing(), "part files")("overwrite", po::bool_switch(&overwrite),
                                                            "replace an existing output");
  po::positional_options_description pos;
  pos.add("part", -1);
  po::variables_map vm;
  po::store(po::command_line_parser(argv).options(opts).positional(pos).run(), vm);
  if (vm.count("help")) {
    std::cout << opts << "\n";
    return 0;
  }
  po::notify(vm);
  MergeSummary s = mergeStores(parts, output, overwrite);
  spdlog::info("merged {} part(s): {} videos, {} segments, {} failed, {} pending -> {}", parts.size(),
               s.videos, s.segments, s.failed, s.pending, output);
  return 0;
}

}  // namespace vidfeat::cli
