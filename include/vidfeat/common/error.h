#pragma once
// Error types shared by every stage. Stages throw; the pipeline decides whether an error stops
// the job (configuration, output file) or only fails one video (InputError from a video).
#include <stdexcept>
#include <string>

namespace vidfeat {

// Any failure vidfeat reports to the user. The message is complete and readable on its own.
class Error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// An error every rank of the job raises together (a verdict rank 0 shared before anyone entered
// a collective call): the ranks can exit normally instead of aborting the MPI job, and only rank
// 0 needs to report it.
class CollectiveError : public Error {
 public:
  using Error::Error;
};

// A problem with one input file (video, checkpoint, manifest, config). The message names the
// file and the reason: "<path>: <reason>".
class InputError : public Error {
 public:
  InputError(std::string path, std::string reason)
      : Error(path + ": " + reason), path_(std::move(path)), reason_(std::move(reason)) {}
  const std::string& path() const noexcept { return path_; }
  const std::string& reason() const noexcept { return reason_; }

 private:
  std::string path_;
  std::string reason_;
};

}  // namespace vidfeat
