#include "store_schema.h"

#include <ctime>

#include "vidfeat/common/error.h"

namespace vidfeat {

namespace {

void insertMember(const h5::Datatype& compound, const char* name, size_t offset, hid_t type) {
  h5::check(H5Tinsert(compound.id(), name, offset, type), "H5Tinsert", name);
}

}  // namespace

h5::Datatype statusType() {
  auto type = h5::Datatype::take(H5Tenum_create(H5T_NATIVE_INT8), "H5Tenum_create");
  const std::pair<const char*, VideoStatus> members[] = {{"pending", VideoStatus::Pending},
                                                         {"complete", VideoStatus::Complete},
                                                         {"failed", VideoStatus::Failed}};
  for (const auto& [name, status] : members) {
    int8_t value = static_cast<int8_t>(status);
    h5::check(H5Tenum_insert(type.id(), name, &value), "H5Tenum_insert", name);
  }
  return type;
}

h5::Datatype segmentType() {
  auto type = h5::Datatype::take(H5Tcreate(H5T_COMPOUND, sizeof(SegmentRow)), "H5Tcreate");
  const size_t seg = offsetof(SegmentRow, segment);
  insertMember(type, "video_row", offsetof(SegmentRow, videoRow), H5T_NATIVE_INT64);
  insertMember(type, "segment", seg + offsetof(SegmentRecord, index), H5T_NATIVE_INT32);
  insertMember(type, "padded_frames", seg + offsetof(SegmentRecord, paddedFrames),
               H5T_NATIVE_INT32);
  insertMember(type, "first_frame", seg + offsetof(SegmentRecord, firstFrame), H5T_NATIVE_INT64);
  insertMember(type, "last_frame", seg + offsetof(SegmentRecord, lastFrame), H5T_NATIVE_INT64);
  insertMember(type, "start_time", seg + offsetof(SegmentRecord, startTime), H5T_NATIVE_DOUBLE);
  insertMember(type, "end_time", seg + offsetof(SegmentRecord, endTime), H5T_NATIVE_DOUBLE);
  return type;
}

h5::Datatype videoType() {
  auto type = h5::Datatype::take(H5Tcreate(H5T_COMPOUND, sizeof(VideoRow)), "H5Tcreate");
  h5::Datatype status = statusType();
  insertMember(type, "status", offsetof(VideoRow, status), status.id());
  insertMember(type, "fps", offsetof(VideoRow, fps), H5T_NATIVE_DOUBLE);
  insertMember(type, "decoded_frames", offsetof(VideoRow, decodedFrames), H5T_NATIVE_INT64);
  insertMember(type, "duration", offsetof(VideoRow, duration), H5T_NATIVE_DOUBLE);
  insertMember(type, "decode_errors", offsetof(VideoRow, decodeErrors), H5T_NATIVE_INT64);
  insertMember(type, "first_row", offsetof(VideoRow, firstRow), H5T_NATIVE_INT64);
  insertMember(type, "segment_count", offsetof(VideoRow, segmentCount), H5T_NATIVE_INT64);
  return type;  // H5Tinsert copies member types, so the temporaries may close
}

h5::Datatype manifestType() {
  auto type = h5::Datatype::take(H5Tcreate(H5T_COMPOUND, sizeof(ManifestRow)), "H5Tcreate");
  h5::Datatype idType = h5::fixedString(kVideoIdBytes);
  h5::Datatype pathType = h5::fixedString(kPathBytes);
  insertMember(type, "video_id", offsetof(ManifestRow, videoId), idType.id());
  insertMember(type, "path", offsetof(ManifestRow, path), pathType.id());
  return type;
}

h5::Datatype videoErrorType() {
  auto type = h5::Datatype::take(H5Tcreate(H5T_COMPOUND, sizeof(VideoErrorRow)), "H5Tcreate");
  h5::Datatype errorType = h5::fixedString(kErrorBytes);
  insertMember(type, "error", offsetof(VideoErrorRow, error), errorType.id());
  return type;
}

h5::Datatype failureType() {
  auto type = h5::Datatype::take(H5Tcreate(H5T_COMPOUND, sizeof(FailureRow)), "H5Tcreate");
  h5::Datatype stageType = h5::fixedString(sizeof(FailureRow::stage));
  h5::Datatype messageType = h5::fixedString(kErrorBytes);
  insertMember(type, "video_row", offsetof(FailureRow, videoRow), H5T_NATIVE_INT64);
  insertMember(type, "rank", offsetof(FailureRow, rank), H5T_NATIVE_INT32);
  insertMember(type, "stage", offsetof(FailureRow, stage), stageType.id());
  insertMember(type, "message", offsetof(FailureRow, message), messageType.id());
  return type;
}

// Cuts `text` to at most `bytes` bytes without splitting a UTF-8 sequence.
std::string truncateUtf8(const std::string& text, size_t bytes) {
  if (text.size() <= bytes) return text;
  size_t cut = bytes;
  while (cut > 0 && (static_cast<unsigned char>(text[cut]) & 0xC0) == 0x80) --cut;
  return text.substr(0, cut);
}

std::string utcNow() {
  std::time_t now = std::time(nullptr);
  std::tm tm{};
  gmtime_r(&now, &tm);
  char text[32];
  std::strftime(text, sizeof text, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return text;
}

// Dataset creation with an unlimited first dimension.
h5::Dataset createTable(const h5::File& file, const char* name, hid_t type,
                        std::vector<hsize_t> dims, std::vector<hsize_t> chunk,
                        const std::string& description, std::optional<h5::Deflate> deflate) {
  std::vector<hsize_t> maxDims = dims;
  maxDims[0] = H5S_UNLIMITED;
  h5::Dataspace space = h5::simpleSpace(dims, maxDims);
  h5::DatasetCreateProps dcpl;
  dcpl.add(h5::Chunked{std::move(chunk)}).add(h5::AllocTime{});
  if (deflate) {
    dcpl.add(*deflate);  // (fill values are left at HDF5's default: a filtered chunk is rewritten)
  } else {
    dcpl.add(h5::FillTime{});
  }
  auto dataset = h5::Dataset::take(
      H5Dcreate2(file.id(), name, type, space.id(), H5P_DEFAULT, dcpl.id(), H5P_DEFAULT),
      "H5Dcreate2", name);
  h5::writeAttribute(dataset.id(), "description", description);
  return dataset;
}

FileMetadata readMetadata(hid_t root) {
  FileMetadata meta;
  meta.modelName = h5::readStringAttribute(root, "model_name");
  meta.modelArch = h5::readStringAttribute(root, "model_arch");
  meta.configYaml = h5::readStringAttribute(root, "config_yaml");
  meta.checkpointPath = h5::readStringAttribute(root, "checkpoint_path");
  meta.checkpointSha256 = h5::readStringAttribute(root, "checkpoint_sha256");
  meta.weights = h5::readStringAttribute(root, "weights");
  meta.tailPolicy = h5::readStringAttribute(root, "tail_policy");
  meta.featureName = h5::readStringAttribute(root, "feature_name");
  meta.featureDim = h5::readIntAttribute(root, "feature_dim");
  meta.crops = h5::hasAttribute(root, "crops")
                   ? static_cast<int32_t>(h5::readIntAttribute(root, "crops"))
                   : 1;
  meta.numFrames = static_cast<int32_t>(h5::readIntAttribute(root, "num_frames"));
  meta.samplingRate = static_cast<int32_t>(h5::readIntAttribute(root, "sampling_rate"));
  meta.stride = static_cast<int32_t>(h5::readIntAttribute(root, "stride"));
  meta.targetFps = h5::readDoubleAttribute(root, "target_fps");
  if (h5::hasAttribute(root, "model_parts"))
    meta.parts = parseModelParts(h5::readStringAttribute(root, "model_parts"));
  return meta;
}

std::string modelPartsText(const std::vector<std::pair<std::string, int64_t>>& parts) {
  std::string out;
  for (const auto& [name, dim] : parts)
    out += (out.empty() ? "" : ",") + name + ":" + std::to_string(dim);
  return out;
}

std::vector<std::pair<std::string, int64_t>> parseModelParts(const std::string& text) {
  std::vector<std::pair<std::string, int64_t>> parts;
  size_t at = 0;
  while (at < text.size()) {
    size_t comma = text.find(',', at);
    if (comma == std::string::npos) comma = text.size();
    const std::string item = text.substr(at, comma - at);
    const size_t colon = item.rfind(':');
    int64_t dim = 0;
    bool ok = colon != std::string::npos && colon > 0 && colon + 1 < item.size() &&
              item.size() - colon - 1 <= 9;
    for (size_t i = colon + 1; ok && i < item.size(); ++i) {
      ok = item[i] >= '0' && item[i] <= '9';
      dim = dim * 10 + (item[i] - '0');
    }
    if (!ok || dim < 1) throw Error("attribute model_parts: '" + item + "' is not NAME:WIDTH");
    parts.emplace_back(item.substr(0, colon), dim);
    at = comma + 1;
  }
  return parts;
}

void writeOutcome(VideoRow& row, const VideoOutcome& outcome) {
  row.status = static_cast<int8_t>(outcome.status);
  row.fps = outcome.fps;
  row.decodedFrames = outcome.decodedFrames;
  row.duration = outcome.duration;
  row.decodeErrors = outcome.decodeErrors;
}

void applyFailureMessage(std::vector<StoredVideo>& videos, int64_t videoRow,
                         const std::string& message) {
  if (videoRow >= 0 && size_t(videoRow) < videos.size() &&
      videos[size_t(videoRow)].status == VideoStatus::Failed) {
    videos[size_t(videoRow)].error = message;
  }
}

StoredVideo storedVideo(const VideoRow& row, const ManifestRow& names) {
  StoredVideo video;
  video.videoId = readFixed(names.videoId);
  video.path = readFixed(names.path);
  video.status = static_cast<VideoStatus>(row.status);
  video.fps = row.fps;
  video.decodedFrames = row.decodedFrames;
  video.duration = row.duration;
  video.decodeErrors = row.decodeErrors;
  video.firstRow = row.firstRow;
  video.segmentCount = row.segmentCount;
  return video;
}

}  // namespace vidfeat
