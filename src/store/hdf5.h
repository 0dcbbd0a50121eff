#pragma once
// The store's thin layer over the HDF5 C API (the only header of vidfeat that includes <hdf5.h>).
//
// - One small RAII type per kind of hid_t (file, group, dataset, dataspace, datatype, attribute,
//   property list). Destructors close without throwing; close() closes and throws on failure, for
//   the places (the file) where a failed close means lost data.
// - Every HDF5 call goes through check(), which turns a negative result into vidfeat::Error
//   carrying HDF5's own error stack, so users see "H5Fcreate(out.h5) failed: unable to open file:
//   ... No such file or directory" instead of a printed stack and a return code.
// - Property lists are typed and built from small named pieces (MpioAccess, CollectiveMetadata,
//   CollectiveTransfer, Chunked, ...), so a transfer property cannot be set on a file access list
//   by accident: the compiler refuses.
//
// Parallel HDF5 caveat: closing a file (and anything that changes metadata) is collective. A rank
// that unwinds with an exception while the others carry on will make them wait in the next
// collective call; the store avoids that by agreeing on errors before collective steps.
// Never put src/store on an include path: this file would then shadow the real <hdf5.h>.
#include <hdf5.h>
#include <mpi.h>

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace vidfeat::h5 {

// Throws vidfeat::Error "<call> failed: <HDF5 error stack, outermost first>" and clears the
// stack. Call right after the failing HDF5 call, before any other HDF5 call resets the stack.
[[noreturn]] void fail(const std::string& call);

// Checks the result of an HDF5 call: hid_t, herr_t, htri_t and hssize_t all signal failure with a
// negative value. Returns the result so calls can be wrapped inline.
template <class T>
T check(T result, const char* call) {
  if (result < 0) fail(call);
  return result;
}
template <class T>
T check(T result, const char* call, const std::string& what) {
  if (result < 0) fail(std::string(call) + "(" + what + ")");
  return result;
}

// While alive, HDF5 does not print its error stack to stderr: the store reports errors as
// exceptions carrying that stack instead, and readStoreSummary probes files that may legitimately
// fail to open. Restores the previous handler on destruction. Not thread-safe (HDF5's automatic
// error printing is process state), like the rest of the store.
class QuietErrors {
 public:
  QuietErrors();
  ~QuietErrors();
  QuietErrors(const QuietErrors&) = delete;
  QuietErrors& operator=(const QuietErrors&) = delete;

 private:
  H5E_auto2_t func_ = nullptr;
  void* data_ = nullptr;
};

// ---- handles ----

// Owns one hid_t. Traits says how to close it. Move-only.
template <class Traits>
class Handle {
 public:
  Handle() = default;
  // Takes ownership of `id` after checking it: Handle::take(H5Dopen2(...), "H5Dopen2").
  static Handle take(hid_t id, const char* call) { return Handle(check(id, call)); }
  static Handle take(hid_t id, const char* call, const std::string& what) {
    return Handle(check(id, call, what));
  }

  ~Handle() { reset(); }
  Handle(Handle&& other) noexcept : id_(std::exchange(other.id_, H5I_INVALID_HID)) {}
  Handle& operator=(Handle&& other) noexcept {
    if (this != &other) {
      reset();
      id_ = std::exchange(other.id_, H5I_INVALID_HID);
    }
    return *this;
  }
  Handle(const Handle&) = delete;
  Handle& operator=(const Handle&) = delete;

  hid_t id() const noexcept { return id_; }
  bool valid() const noexcept { return id_ >= 0; }

  // Closes now and throws if HDF5 reports a failure (for a file: data may not be on disk).
  void close() {
    if (!valid()) return;
    hid_t id = std::exchange(id_, H5I_INVALID_HID);
    check(Traits::close(id), Traits::kCloseName);
  }

  // Closes now, ignoring failures: for destructors and error paths, which must not throw.
  void reset() noexcept {
    if (valid()) (void)Traits::close(std::exchange(id_, H5I_INVALID_HID));
  }

  // Forgets the id without closing it: for when HDF5 has already shut down (parallel HDF5 closes
  // everything from MPI_Finalize), where closing would only produce errors.
  void release() noexcept { id_ = H5I_INVALID_HID; }

 protected:
  explicit Handle(hid_t id) : id_(id) {}

 private:
  hid_t id_ = H5I_INVALID_HID;
};

struct FileTraits {
  static herr_t close(hid_t id) { return H5Fclose(id); }
  static constexpr const char* kCloseName = "H5Fclose";
};
struct GroupTraits {
  static herr_t close(hid_t id) { return H5Gclose(id); }
  static constexpr const char* kCloseName = "H5Gclose";
};
struct DatasetTraits {
  static herr_t close(hid_t id) { return H5Dclose(id); }
  static constexpr const char* kCloseName = "H5Dclose";
};
struct DataspaceTraits {
  static herr_t close(hid_t id) { return H5Sclose(id); }
  static constexpr const char* kCloseName = "H5Sclose";
};
struct DatatypeTraits {
  static herr_t close(hid_t id) { return H5Tclose(id); }
  static constexpr const char* kCloseName = "H5Tclose";
};
struct AttributeTraits {
  static herr_t close(hid_t id) { return H5Aclose(id); }
  static constexpr const char* kCloseName = "H5Aclose";
};
struct PropertyListTraits {
  static herr_t close(hid_t id) { return H5Pclose(id); }
  static constexpr const char* kCloseName = "H5Pclose";
};

using File = Handle<FileTraits>;
using Group = Handle<GroupTraits>;
using Dataset = Handle<DatasetTraits>;
using Dataspace = Handle<DataspaceTraits>;
// Only for types we create or copy; predefined types (H5T_NATIVE_INT, ...) are never closed.
using Datatype = Handle<DatatypeTraits>;
using Attribute = Handle<AttributeTraits>;

// ---- property lists: typed, built from named pieces ----

// MPI-IO file driver on `comm` (HDF5 duplicates the communicator; ours stays the caller's).
struct MpioAccess {
  MPI_Comm comm;
  MPI_Info info = MPI_INFO_NULL;
};
// Metadata reads and writes done collectively: without it every rank reads the same metadata
// independently (a metadata storm at scale) and HDF5 may deadlock when ranks diverge.
struct CollectiveMetadata {
  bool ops = true;    // H5Pset_all_coll_metadata_ops
  bool write = true;  // H5Pset_coll_metadata_write
};
// Raw data transfers with MPI collective I/O (H5FD_MPIO_COLLECTIVE).
struct CollectiveTransfer {};
// Chunked layout with the given chunk dimensions (required for extendable datasets).
struct Chunked {
  std::vector<hsize_t> dims;
};
// When to write fill values; Never saves writing every chunk twice (all rows get written).
struct FillTime {
  H5D_fill_time_t when = H5D_FILL_TIME_NEVER;
};
// When to allocate chunks. The MPI-IO driver forces Early for unfiltered datasets anyway; saying
// so makes explicit that H5Dset_extent (collective) allocates the new chunks, not the writes.
struct AllocTime {
  H5D_alloc_time_t when = H5D_ALLOC_TIME_EARLY;
};

// Deflate (zlib) compression of each chunk. Parallel HDF5 (>= 1.10.2) writes a filtered dataset
// only collectively; every write of ours is.
struct Deflate {
  unsigned level = 1;
};

class PropertyList : public Handle<PropertyListTraits> {
 protected:
  PropertyList(hid_t cls, const char* what);
};

class FileAccessProps : public PropertyList {
 public:
  FileAccessProps() : PropertyList(H5P_FILE_ACCESS, "H5Pcreate(H5P_FILE_ACCESS)") {}
  FileAccessProps& add(const MpioAccess& piece);
  FileAccessProps& add(const CollectiveMetadata& piece);
};

class TransferProps : public PropertyList {
 public:
  TransferProps() : PropertyList(H5P_DATASET_XFER, "H5Pcreate(H5P_DATASET_XFER)") {}
  TransferProps& add(const CollectiveTransfer& piece);
};

class DatasetCreateProps : public PropertyList {
 public:
  DatasetCreateProps() : PropertyList(H5P_DATASET_CREATE, "H5Pcreate(H5P_DATASET_CREATE)") {}
  DatasetCreateProps& add(const Chunked& piece);
  DatasetCreateProps& add(const FillTime& piece);
  DatasetCreateProps& add(const AllocTime& piece);
  DatasetCreateProps& add(const Deflate& piece);
};

// ---- was it really collective? ----

// How the last H5Dread/H5Dwrite through a transfer property list was done.
struct IoModeReport {
  H5D_mpio_actual_io_mode_t mode = H5D_MPIO_NO_COLLECTIVE;
  uint32_t localCause = 0;   // H5D_mpio_no_collective_cause_t bits, this rank
  uint32_t globalCause = 0;  // same, OR-ed over all ranks
  // True when HDF5 used collective MPI-IO (possibly with some chunks done independently inside
  // the collective operation, which is HDF5's own optimisation, not a fallback).
  bool collective() const { return mode != H5D_MPIO_NO_COLLECTIVE && globalCause == 0; }
  std::string describe() const;  // e.g. "chunk collective" or "independent: datatype conversion"
};

IoModeReport ioMode(const TransferProps& dxpl);

// Logs a spdlog warning naming `what` when the last transfer through `dxpl` was not collective:
// a silent fallback to independent I/O is correct but can be orders of magnitude slower on a
// parallel file system. Returns whether it was collective.
bool warnIfNotCollective(const TransferProps& dxpl, const std::string& what);

// ---- small conveniences used by the store ----

// Simple dataspace of the given current and maximum dimensions (maxDims empty: same as dims).
Dataspace simpleSpace(const std::vector<hsize_t>& dims, const std::vector<hsize_t>& maxDims = {});
// The dataset's current dataspace and its dimensions.
Dataspace spaceOf(const Dataset& dataset, const char* what);
std::vector<hsize_t> dimsOf(const Dataset& dataset, const char* what);
// An upper bound on how many rows (along the first dimension) of `dataset` have storage in the
// file: allocated chunks times their size, or the contiguous block. A file may declare an extent
// of 10^9 rows without storing them; a reader of an untrusted file checks the rows it will
// allocate memory for against this before trusting the extent.
hsize_t storedRowsBound(const Dataset& dataset, const char* what);

// Reads rows [0, rows) of an untrusted 1-D chunked table stored unfiltered or through deflate
// alone, whose file row type must equal `rowType`, into `out` (rows x the type's size bytes;
// rows no chunk stores read as zeros). Deflated chunks are inflated here, not by HDF5, into a
// buffer of exactly the chunk's size: HDF5's own filter grows its output without bound, so a
// small hostile chunk could inflate to gigabytes. Throws naming `what` when a chunk is larger
// than `maxChunkBytes` (stored or inflated), is not valid deflate data, or the layout differs.
void readBoundedTable(const Dataset& dataset, hid_t rowType, hsize_t rows, size_t maxChunkBytes,
                      std::vector<char>& out, const char* what);

// Fixed-length, NUL-padded UTF-8 string type of `bytes` bytes.
Datatype fixedString(size_t bytes);
// Variable-length UTF-8 string type.
Datatype variableString();

// Scalar attributes on `obj` (a file, group or dataset), created collectively in parallel: every
// rank must pass the same value.
void writeAttribute(hid_t obj, const char* name, const std::string& value);
void writeAttribute(hid_t obj, const char* name, int64_t value);
void writeAttribute(hid_t obj, const char* name, int32_t value);
void writeAttribute(hid_t obj, const char* name, double value);

bool hasAttribute(hid_t obj, const char* name);
// Reads a string attribute stored either variable- or fixed-length.
std::string readStringAttribute(hid_t obj, const char* name);
int64_t readIntAttribute(hid_t obj, const char* name);
double readDoubleAttribute(hid_t obj, const char* name);

// Whether `path` names a link in `file` (each component checked, so "/a/b" works).
bool linkExists(hid_t file, const char* path);

}  // namespace vidfeat::h5
