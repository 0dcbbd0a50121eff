#include "failure_report.h"
#include "options.h"
#include "vidfeat/cli/commands.h"
#include "vidfeat/common/log.h"
#include "vidfeat/store/merge.h"

namespace vidfeat::cli {

int mergeCommand(const std::vector<std::string>& argv) {
  std::vector<std::string> parts;
  std::string output;
  bool overwrite = false;
  CommandOptions opts(
      "merge",
      "vidfeat merge PART... -o OUT: join the part files of a job array (extract --shard K/N) "
      "into\n"
      "one file. Parts must come from the same model, config, checkpoint and clip settings and\n"
      "must not share a video id.");
  opts.add()("output,o", po::value(&output)->required(), "merged file")(
      "part", po::value(&parts)->composing(), "part files")(
      "overwrite", po::bool_switch(&overwrite), "replace an existing output");
  opts.positional("part", -1);
  if (!opts.parse(argv)) return 0;
  MergeSummary s = mergeStores(parts, output, overwrite);
  spdlog::info("merged {} part(s): {} videos, {} segments, {} failed, {} pending -> {}",
               parts.size(), s.videos, s.segments, s.failed, s.pending, output);
  if (s.failed > 0) reportFailures(readStoreSummary(output), "recorded in " + output);
  return 0;
}

int joinCommand(const std::vector<std::string>& argv) {
  std::vector<std::string> files;
  std::string output;
  bool overwrite = false;
  CommandOptions opts(
      "join",
      "vidfeat join FILE... -o OUT: files of other models over the same videos and windows (each\n"
      "extracted with the same --clip-seconds) into one file whose rows hold their features side\n"
      "by side, as `extract --model A --model B` writes it: how a model is added to a file.");
  opts.add()("output,o", po::value(&output)->required(), "joined file")(
      "file", po::value(&files)->composing(), "files to join, in column order")(
      "overwrite", po::bool_switch(&overwrite), "replace an existing output");
  opts.positional("file", -1);
  if (!opts.parse(argv)) return 0;
  MergeSummary s = joinStores(files, output, overwrite);
  spdlog::info("joined {} file(s): {} videos, {} windows, {} failed, {} pending -> {}",
               files.size(), s.videos, s.segments, s.failed, s.pending, output);
  if (s.failed > 0) reportFailures(readStoreSummary(output), "recorded in " + output);
  return 0;
}

}  // namespace vidfeat::cli
