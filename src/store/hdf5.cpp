#include "hdf5.h"

#include <spdlog/spdlog.h>
#include <zlib.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>

#include "vidfeat/common/error.h"

namespace vidfeat::h5 {

namespace {

herr_t collectError(unsigned /*n*/, const H5E_error2_t* err, void* data) {
  auto* parts = static_cast<std::vector<std::string>*>(data);
  std::string text = err->desc ? err->desc : "";
  if (text.empty() && err->func_name) text = std::string("error in ") + err->func_name;
  // HDF5 often repeats the same description at several levels; once is enough.
  if (!text.empty() && (parts->empty() || parts->back() != text)) parts->push_back(std::move(text));
  return 0;
}

}  // namespace

void fail(const std::string& call) {
  std::vector<std::string> parts;
  // Error-stack functions do not reset the stack, so the failing call's entries are still there.
  // Their own results are ignored: we are already reporting a failure.
  (void)H5Ewalk2(H5E_DEFAULT, H5E_WALK_DOWNWARD, collectError, &parts);
  (void)H5Eclear2(H5E_DEFAULT);

  // Outermost first: the API-level description, then the causes down to the one that started it
  // (for files usually the OS error). Long stacks keep both ends.
  constexpr size_t kKeep = 8;
  if (parts.size() > kKeep) {
    std::vector<std::string> kept(parts.begin(), parts.begin() + 3);
    kept.emplace_back("...");
    kept.insert(kept.end(), parts.end() - (kKeep - 4), parts.end());
    parts = std::move(kept);
  }
  std::string message = call + " failed";
  if (parts.empty()) {
    message += " (HDF5 reported no details)";
  } else {
    for (const auto& part : parts) message += ": " + part;
  }
  throw Error(message);
}

QuietErrors::QuietErrors() {
  // Configuration of error printing cannot meaningfully fail; results deliberately ignored.
  (void)H5Eget_auto2(H5E_DEFAULT, &func_, &data_);
  (void)H5Eset_auto2(H5E_DEFAULT, nullptr, nullptr);
}

QuietErrors::~QuietErrors() { (void)H5Eset_auto2(H5E_DEFAULT, func_, data_); }

// ---- property lists ----

PropertyList::PropertyList(hid_t cls, const char* what)
    : Handle<PropertyListTraits>(check(H5Pcreate(cls), what)) {}

FileAccessProps& FileAccessProps::add(const MpioAccess& piece) {
  check(H5Pset_fapl_mpio(id(), piece.comm, piece.info), "H5Pset_fapl_mpio");
  return *this;
}

FileAccessProps& FileAccessProps::add(const CollectiveMetadata& piece) {
  check(H5Pset_all_coll_metadata_ops(id(), piece.ops), "H5Pset_all_coll_metadata_ops");
  check(H5Pset_coll_metadata_write(id(), piece.write), "H5Pset_coll_metadata_write");
  return *this;
}

TransferProps& TransferProps::add(const CollectiveTransfer& /*piece*/) {
  check(H5Pset_dxpl_mpio(id(), H5FD_MPIO_COLLECTIVE), "H5Pset_dxpl_mpio");
  return *this;
}

DatasetCreateProps& DatasetCreateProps::add(const Chunked& piece) {
  check(H5Pset_chunk(id(), static_cast<int>(piece.dims.size()), piece.dims.data()), "H5Pset_chunk");
  return *this;
}

DatasetCreateProps& DatasetCreateProps::add(const FillTime& piece) {
  check(H5Pset_fill_time(id(), piece.when), "H5Pset_fill_time");
  return *this;
}

DatasetCreateProps& DatasetCreateProps::add(const AllocTime& piece) {
  check(H5Pset_alloc_time(id(), piece.when), "H5Pset_alloc_time");
  return *this;
}

DatasetCreateProps& DatasetCreateProps::add(const Deflate& piece) {
  check(H5Pset_deflate(id(), piece.level), "H5Pset_deflate");
  return *this;
}

// ---- collective check ----

std::string IoModeReport::describe() const {
  std::string text;
  switch (mode) {
    case H5D_MPIO_NO_COLLECTIVE:
      text = "independent";
      break;
    case H5D_MPIO_CHUNK_INDEPENDENT:
      text = "chunked, collective operation with independent chunk access";
      break;
    case H5D_MPIO_CHUNK_COLLECTIVE:
      text = "chunked, collective";
      break;
    case H5D_MPIO_CHUNK_MIXED:
      text = "chunked, collective with some chunks independent";
      break;
    case H5D_MPIO_CONTIGUOUS_COLLECTIVE:
      text = "contiguous, collective";
      break;
  }
  struct Cause {
    uint32_t bit;
    const char* name;
  };
  static const Cause kCauses[] = {
      {H5D_MPIO_SET_INDEPENDENT, "independent transfer requested"},
      {H5D_MPIO_DATATYPE_CONVERSION,
       "datatype conversion needed (memory type differs from file type)"},
      {H5D_MPIO_DATA_TRANSFORMS, "data transform set"},
      {H5D_MPIO_MPI_OPT_TYPES_ENV_VAR_DISABLED, "MPI derived types disabled by environment"},
      {H5D_MPIO_NOT_SIMPLE_OR_SCALAR_DATASPACES, "dataspace neither simple nor scalar"},
      {H5D_MPIO_NOT_CONTIGUOUS_OR_CHUNKED_DATASET, "dataset neither contiguous nor chunked"},
      {H5D_MPIO_PARALLEL_FILTERED_WRITES_DISABLED, "parallel filtered writes disabled"},
      {H5D_MPIO_ERROR_WHILE_CHECKING_COLLECTIVE_POSSIBLE,
       "error while checking whether collective is possible"},
  };
  uint32_t causes = localCause | globalCause;
  std::string why;
  for (const auto& cause : kCauses) {
    if (causes & cause.bit) why += (why.empty() ? "" : ", ") + std::string(cause.name);
  }
  if (!why.empty()) text += " (" + why + ")";
  return text;
}

IoModeReport ioMode(const TransferProps& dxpl) {
  IoModeReport report;
  check(H5Pget_mpio_actual_io_mode(dxpl.id(), &report.mode), "H5Pget_mpio_actual_io_mode");
  check(H5Pget_mpio_no_collective_cause(dxpl.id(), &report.localCause, &report.globalCause),
        "H5Pget_mpio_no_collective_cause");
  return report;
}

bool warnIfNotCollective(const TransferProps& dxpl, const std::string& what) {
  IoModeReport report = ioMode(dxpl);
  if (!report.collective()) {
    spdlog::warn(
        "{}: HDF5 did not use collective MPI-IO ({}); the data is correct but writing may "
        "be much slower on a parallel file system",
        what, report.describe());
  }
  return report.collective();
}

// ---- conveniences ----

Dataspace simpleSpace(const std::vector<hsize_t>& dims, const std::vector<hsize_t>& maxDims) {
  return Dataspace::take(H5Screate_simple(static_cast<int>(dims.size()), dims.data(),
                                          maxDims.empty() ? nullptr : maxDims.data()),
                         "H5Screate_simple");
}

Dataspace spaceOf(const Dataset& dataset, const char* what) {
  return Dataspace::take(H5Dget_space(dataset.id()), "H5Dget_space", what);
}

std::vector<hsize_t> dimsOf(const Dataset& dataset, const char* what) {
  Dataspace space = spaceOf(dataset, what);
  int rank = check(H5Sget_simple_extent_ndims(space.id()), "H5Sget_simple_extent_ndims", what);
  std::vector<hsize_t> dims(static_cast<size_t>(rank));
  check(H5Sget_simple_extent_dims(space.id(), dims.data(), nullptr), "H5Sget_simple_extent_dims",
        what);
  return dims;
}

hsize_t storedRowsBound(const Dataset& dataset, const char* what) {
  const std::vector<hsize_t> dims = dimsOf(dataset, what);
  if (dims.empty()) return 0;
  hsize_t rowElements = 1;
  for (size_t i = 1; i < dims.size(); ++i) rowElements *= dims[i];
  if (rowElements == 0) return dims[0];  // rows of nothing cost nothing
  auto dcpl = Handle<PropertyListTraits>::take(H5Dget_create_plist(dataset.id()),
                                               "H5Dget_create_plist", what);
  const H5D_layout_t layout = H5Pget_layout(dcpl.id());
  if (layout == H5D_COMPACT) return dims[0];  // stored in the object header, whole
  if (layout == H5D_CHUNKED) {
    std::vector<hsize_t> chunk(dims.size());
    check(H5Pget_chunk(dcpl.id(), static_cast<int>(chunk.size()), chunk.data()), "H5Pget_chunk",
          what);
    hsize_t chunkElements = 1;
    for (hsize_t c : chunk) chunkElements *= c;
    hsize_t allocated = 0;
    Dataspace space = spaceOf(dataset, what);  // all of it (HDF5 1.10 does not take H5S_ALL here)
    check(H5Dget_num_chunks(dataset.id(), space.id(), &allocated), "H5Dget_num_chunks", what);
    // Allocated chunks take file space, so `allocated` is bounded by the file size.
    return static_cast<hsize_t>(static_cast<long double>(allocated) * chunkElements / rowElements);
  }
  Datatype type = Datatype::take(H5Dget_type(dataset.id()), "H5Dget_type", what);
  const size_t typeSize = H5Tget_size(type.id());
  if (typeSize == 0) fail(std::string("H5Tget_size(") + what + ")");
  return H5Dget_storage_size(dataset.id()) / (typeSize * rowElements);
}

void readBoundedTable(const Dataset& dataset, hid_t rowType, hsize_t rows, size_t maxChunkBytes,
                      std::vector<char>& out, const char* what) {
  const std::string name(what);
  const size_t rowBytes = H5Tget_size(rowType);
  out.assign(static_cast<size_t>(rows) * rowBytes, 0);
  if (rows == 0) return;
  Datatype fileType = Datatype::take(H5Dget_type(dataset.id()), "H5Dget_type", what);
  if (H5Tequal(fileType.id(), rowType) <= 0)
    throw Error(name + " does not have the expected row type");
  const std::vector<hsize_t> dims = dimsOf(dataset, what);
  if (dims.size() != 1 || dims[0] < rows) throw Error(name + " has fewer rows than expected");
  auto dcpl = Handle<PropertyListTraits>::take(H5Dget_create_plist(dataset.id()),
                                               "H5Dget_create_plist", what);
  if (H5Pget_layout(dcpl.id()) != H5D_CHUNKED) throw Error(name + " is not stored in chunks");
  hsize_t chunkRows = 0;
  check(H5Pget_chunk(dcpl.id(), 1, &chunkRows), "H5Pget_chunk", what);
  if (chunkRows == 0 || chunkRows > maxChunkBytes / rowBytes) {
    throw Error(name + " has chunks of " + std::to_string(chunkRows) + " rows, more than " +
                std::to_string(maxChunkBytes) + " bytes");
  }
  const size_t chunkBytes = static_cast<size_t>(chunkRows) * rowBytes;
  const int nFilters = H5Pget_nfilters(dcpl.id());
  bool deflated = false;
  for (int i = 0; i < nFilters; ++i) {
    unsigned flags = 0, config = 0;
    size_t nValues = 0;
    const H5Z_filter_t id =
        H5Pget_filter2(dcpl.id(), unsigned(i), &flags, &nValues, nullptr, 0, nullptr, &config);
    if (id != H5Z_FILTER_DEFLATE || deflated)
      throw Error(name + " is stored through a filter other than deflate alone");
    deflated = true;
  }
  if (nFilters < 0) throw Error(name + " has an unreadable filter pipeline");

  Dataspace space = spaceOf(dataset, what);
  hsize_t chunks = 0;
  check(H5Dget_num_chunks(dataset.id(), space.id(), &chunks), "H5Dget_num_chunks", what);
  const size_t storedLimit = compressBound(static_cast<uLong>(chunkBytes)) + 64;
  std::vector<unsigned char> stored, chunk(chunkBytes);
  for (hsize_t i = 0; i < chunks; ++i) {
    hsize_t offset = 0, size = 0;
    unsigned mask = 0;
    haddr_t address = 0;
    check(H5Dget_chunk_info(dataset.id(), space.id(), i, &offset, &mask, &address, &size),
          "H5Dget_chunk_info", what);
    if (offset % chunkRows != 0 || offset >= dims[0]) throw Error(name + " has a misplaced chunk");
    const bool raw = !deflated || (mask & 1u) != 0;  // bit 0 set: the filter was skipped
    if (size > (raw ? chunkBytes : storedLimit)) {
      throw Error(name + " has a chunk of " + std::to_string(size) + " bytes, more than its " +
                  std::to_string(chunkBytes) + "-byte rows can need");
    }
    stored.resize(static_cast<size_t>(size));
    uint32_t filters = 0;
    check(H5Dread_chunk(dataset.id(), H5P_DEFAULT, &offset, &filters, stored.data()),
          "H5Dread_chunk", what);
    if (raw) {
      if (size != chunkBytes) throw Error(name + " has a chunk of the wrong size");
      std::memcpy(chunk.data(), stored.data(), chunkBytes);
    } else {
      z_stream z{};
      if (inflateInit(&z) != Z_OK) throw Error(name + ": cannot start zlib");
      z.next_in = stored.data();
      z.avail_in = static_cast<uInt>(stored.size());
      z.next_out = chunk.data();
      z.avail_out = static_cast<uInt>(chunkBytes);
      const int status = inflate(&z, Z_FINISH);  // one call: the whole chunk fits the buffer
      const uLong produced = z.total_out;
      inflateEnd(&z);
      if (status != Z_STREAM_END || produced != chunkBytes) {
        throw Error(name + " has a chunk that is not " + std::to_string(chunkBytes) +
                    " bytes of deflate data");
      }
    }
    const hsize_t first = offset, last = std::min<hsize_t>(rows, offset + chunkRows);
    if (first < last) {
      std::memcpy(out.data() + first * rowBytes, chunk.data(),
                  static_cast<size_t>(last - first) * rowBytes);
    }
  }
}

Datatype fixedString(size_t bytes) {
  auto type = Datatype::take(H5Tcopy(H5T_C_S1), "H5Tcopy(H5T_C_S1)");
  check(H5Tset_size(type.id(), bytes), "H5Tset_size");
  // NUL-padded rather than NUL-terminated: a value may use every byte, and readers (h5py, our own)
  // strip the padding.
  check(H5Tset_strpad(type.id(), H5T_STR_NULLPAD), "H5Tset_strpad");
  check(H5Tset_cset(type.id(), H5T_CSET_UTF8), "H5Tset_cset");
  return type;
}

Datatype variableString() {
  auto type = Datatype::take(H5Tcopy(H5T_C_S1), "H5Tcopy(H5T_C_S1)");
  check(H5Tset_size(type.id(), H5T_VARIABLE), "H5Tset_size(H5T_VARIABLE)");
  check(H5Tset_cset(type.id(), H5T_CSET_UTF8), "H5Tset_cset");
  return type;
}

namespace {

void writeScalarAttribute(hid_t obj, const char* name, hid_t fileType, hid_t memType,
                          const void* value) {
  auto space = Dataspace::take(H5Screate(H5S_SCALAR), "H5Screate(H5S_SCALAR)");
  auto attr = Attribute::take(H5Acreate2(obj, name, fileType, space.id(), H5P_DEFAULT, H5P_DEFAULT),
                              "H5Acreate2", name);
  check(H5Awrite(attr.id(), memType, value), "H5Awrite", name);
  attr.close();
}

}  // namespace

void writeAttribute(hid_t obj, const char* name, const std::string& value) {
  // Variable-length: no length limit (the config YAML can be long) and h5py returns str. Fine in
  // parallel because attributes are metadata, written once with the value every rank passed.
  Datatype type = variableString();
  const char* text = value.c_str();
  writeScalarAttribute(obj, name, type.id(), type.id(), &text);
}

void writeAttribute(hid_t obj, const char* name, int64_t value) {
  writeScalarAttribute(obj, name, H5T_STD_I64LE, H5T_NATIVE_INT64, &value);
}

void writeAttribute(hid_t obj, const char* name, int32_t value) {
  writeScalarAttribute(obj, name, H5T_STD_I32LE, H5T_NATIVE_INT32, &value);
}

void writeAttribute(hid_t obj, const char* name, double value) {
  writeScalarAttribute(obj, name, H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, &value);
}

bool hasAttribute(hid_t obj, const char* name) {
  return check(H5Aexists(obj, name), "H5Aexists", name) > 0;
}

std::string readStringAttribute(hid_t obj, const char* name) {
  auto attr = Attribute::take(H5Aopen(obj, name, H5P_DEFAULT), "H5Aopen", name);
  auto fileType = Datatype::take(H5Aget_type(attr.id()), "H5Aget_type", name);
  if (check(H5Tget_class(fileType.id()), "H5Tget_class", name) != H5T_STRING) {
    throw Error(std::string("attribute '") + name + "' is not a string");
  }
  if (check(H5Tis_variable_str(fileType.id()), "H5Tis_variable_str", name) > 0) {
    Datatype memType = variableString();
    char* text = nullptr;
    check(H5Aread(attr.id(), memType.id(), &text), "H5Aread", name);
    std::string value = text ? text : "";
    (void)H5free_memory(text);  // frees what HDF5 allocated; nothing useful to do on failure
    return value;
  }
  // Fixed-length: read with the file's own type (no conversion), then drop NUL padding.
  size_t size = H5Tget_size(fileType.id());
  if (size == 0) fail(std::string("H5Tget_size(") + name + ")");
  std::string buffer(size, '\0');
  check(H5Aread(attr.id(), fileType.id(), buffer.data()), "H5Aread", name);
  buffer.resize(buffer.find('\0') == std::string::npos ? size : buffer.find('\0'));
  return buffer;
}

int64_t readIntAttribute(hid_t obj, const char* name) {
  auto attr = Attribute::take(H5Aopen(obj, name, H5P_DEFAULT), "H5Aopen", name);
  int64_t value = 0;
  check(H5Aread(attr.id(), H5T_NATIVE_INT64, &value), "H5Aread", name);
  return value;
}

double readDoubleAttribute(hid_t obj, const char* name) {
  auto attr = Attribute::take(H5Aopen(obj, name, H5P_DEFAULT), "H5Aopen", name);
  double value = 0;
  check(H5Aread(attr.id(), H5T_NATIVE_DOUBLE, &value), "H5Aread", name);
  return value;
}

bool linkExists(hid_t file, const char* path) {
  // H5Lexists fails (rather than returning false) when an intermediate component is missing, so
  // walk the path one component at a time.
  std::string full = path;
  size_t pos = full[0] == '/' ? 1 : 0;
  while (pos <= full.size()) {
    size_t next = full.find('/', pos);
    if (next == std::string::npos) next = full.size();
    std::string prefix = full.substr(0, next);
    if (check(H5Lexists(file, prefix.c_str(), H5P_DEFAULT), "H5Lexists", prefix) <= 0) return false;
    pos = next + 1;
  }
  return true;
}

}  // namespace vidfeat::h5
