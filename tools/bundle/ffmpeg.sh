#!/usr/bin/env bash
# A minimal static FFmpeg for the relocatable bundle (tools/bundle/build.sh), rebuilt from Debian's
# own source package (apt-get source ffmpeg, the version installed here), so the bundle carries no
# codec library of its own beyond libdav1d: only the demuxers of vidfeat's whitelist
# (src/decode/ffmpeg.h kFormatWhitelist), the video decoders those containers hold, a few audio
# decoders (so that probing a file with an audio track does not read the whole analyzeduration),
# swscale, and NVIDIA's nvdec/cuvid hwaccels and nvenc encoders through ffnvcodec (its headers,
# Debian's libffmpeg-nvenc-dev, dlopen the driver's libcuda/libnvcuvid/libnvidia-encode at run
# time: nothing of CUDA is linked). The ffmpeg program (no ffprobe: 9 MB more) gets the lavfi input, a few
# generator/scale filters, the nvenc encoders and native CPU encoders (mpeg4, mjpeg, ffv1, ...), so
# the GPU check can make its test videos on the node.
#
# Usage: tools/bundle/ffmpeg.sh            prints the install prefix (lib/, include/, bin/, lib/pkgconfig)
# The build is cached in $VIDFEAT_CI_CACHE (default ~/.cache/vidfeat-ci) as
# ffmpeg-<version>-<hash of this configure line>/, finished when .complete exists: CI pays it once.
# Environment: VIDFEAT_BUNDLE_JOBS (default 2), VIDFEAT_BUILD_LOCK (default /tmp/vidfeat-build.lock;
# every compile step takes it, shared machine).
set -euo pipefail
cd "$(dirname "$0")/../.."
CACHE=${VIDFEAT_CI_CACHE:-$HOME/.cache/vidfeat-ci}
JOBS=${VIDFEAT_BUNDLE_JOBS:-2}
LOCK=${VIDFEAT_BUILD_LOCK:-/tmp/vidfeat-build.lock}
log() { echo "bundle/ffmpeg: $*" >&2; }

# The Debian version installed here (the one whose headers the CPU build uses), e.g. 7:5.1.9-0+deb12u1.
DEB_VERSION=$(dpkg-query -W -f='${Version}' libavcodec-dev 2>/dev/null || true)
[ -n "$DEB_VERSION" ] || { log "libavcodec-dev is not installed (tools/setup.sh installs it)"; exit 1; }
UPSTREAM=${DEB_VERSION#*:}
UPSTREAM=${UPSTREAM%%-*}

demuxers=mov,matroska,avi,flv,mpegts,mpegps,mpegvideo,gif,asf,ogg,m4v,h264,hevc,mjpeg,yuv4mpegpipe,nut,rawvideo,dv,mxf,ivf,obu,image2,image_png_pipe,image_jpeg_pipe,apng,image_webp_pipe,webm_dash_manifest
vdecoders=h264,hevc,vp8,vp9,av1,libdav1d,mpeg4,mpeg1video,mpeg2video,mjpeg,gif,png,apng,webp,h263,h263p,msmpeg4v1,msmpeg4v2,msmpeg4v3,wmv1,wmv2,wmv3,vc1,flv,vp6f,theora,dvvideo,rawvideo,prores,dnxhd,ffv1,jpeg2000,huffyuv,utvideo,v210,yuv4
adecoders=aac,aac_latm,mp3float,mp2float,ac3,eac3,opus,vorbis,flac,alac,pcm_s16le,pcm_s16be,pcm_s24le,pcm_f32le,pcm_u8,pcm_mulaw,pcm_alaw,wmav2
nvdec=h264_nvdec,hevc_nvdec,vp8_nvdec,vp9_nvdec,av1_nvdec,mpeg1_nvdec,mpeg2_nvdec,mpeg4_nvdec,mjpeg_nvdec,vc1_nvdec,wmv3_nvdec
cuvid=h264_cuvid,hevc_cuvid,vp8_cuvid,vp9_cuvid,av1_cuvid,mpeg1_cuvid,mpeg2_cuvid,mpeg4_cuvid,mjpeg_cuvid,vc1_cuvid
encoders=h264_nvenc,hevc_nvenc,av1_nvenc,mpeg4,mjpeg,ffv1,mpeg2video,rawvideo,png,wrapped_avframe,pcm_s16le
muxers=mp4,mov,matroska,webm,avi,mpegts,nut,null,rawvideo,h264,hevc,ivf,image2,framemd5,framecrc,yuv4mpegpipe
parsers=h264,hevc,vp8,vp9,av1,mpeg4video,mpegvideo,mjpeg,gif,png,webp,h263,vc1,dvdsub,aac,aac_latm,mpegaudio,ac3,opus,vorbis,flac,dirac
filters=buffer,buffersink,abuffer,abuffersink,format,aformat,null,anull,trim,atrim,scale,fps,setpts,testsrc,testsrc2,color,rgbtestsrc,smptebars,mandelbrot,life,pad,crop,transpose,hflip,vflip,setsar,setdar,select,concat,hwupload_cuda,hwdownload,showinfo
configure_args=(
  --disable-autodetect --disable-everything --disable-doc --disable-debug --disable-shared --enable-static
  --enable-pic --enable-pthreads --enable-zlib --disable-network
  --disable-swresample --disable-postproc --disable-ffplay --disable-ffprobe
  --enable-ffnvcodec --enable-nvdec --enable-nvenc --enable-cuvid --enable-libdav1d
  --enable-protocol=file,pipe --enable-indev=lavfi
  --enable-demuxer=$demuxers --enable-decoder=$vdecoders,$adecoders,$cuvid --enable-hwaccel=$nvdec
  --enable-encoder=$encoders --enable-muxer=$muxers --enable-parser=$parsers --enable-filter=$filters
  --enable-bsf=h264_mp4toannexb,hevc_mp4toannexb,extract_extradata,vp9_superframe_split,av1_frame_split,aac_adtstoasc,null
)
key=$(printf '%s\n' "$DEB_VERSION" "${configure_args[@]}" "cflags:-O2" | sha256sum | cut -c1-12)
prefix="$CACHE/ffmpeg-$UPSTREAM-$key"
if [ -f "$prefix/.complete" ]; then
  log "cached: $prefix"
  echo "$prefix"
  exit 0
fi

# Build dependencies (Debian packages): the source comes from a deb-src entry added for Debian's
# own mirrors; nasm for FFmpeg's x86 assembly (the fast H.264/HEVC paths), ffnvcodec headers, dav1d.
flock /tmp/vidfeat-apt.lock tools/install_packages.sh bundle dpkg-dev nasm libffmpeg-nvenc-dev libdav1d-dev pkg-config >&2
src_root="$CACHE/src"
src="$src_root/ffmpeg-$UPSTREAM"
if [ ! -f "$src/.unpacked-$DEB_VERSION" ]; then
  srcs=/etc/apt/sources.list.d/vidfeat-deb-src.sources
  if ! apt-get source --print-uris "ffmpeg=$DEB_VERSION" >/dev/null 2>&1; then
    log "adding Debian's deb-src entries ($srcs)"
    SUDO=""
    [ "$(id -u)" -eq 0 ] || SUDO="sudo"
    codename=$(. /etc/os-release && echo "$VERSION_CODENAME")
    $SUDO tee "$srcs" >/dev/null <<EOF
Types: deb-src
URIs: http://deb.debian.org/debian
Suites: $codename $codename-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb-src
URIs: http://deb.debian.org/debian-security
Suites: $codename-security
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
EOF
    flock /tmp/vidfeat-apt.lock $SUDO apt-get update -qq >&2
  fi
  rm -rf "$src"
  mkdir -p "$src_root"
  (cd "$src_root" && apt-get source -qq "ffmpeg=$DEB_VERSION" >&2)
  touch "$src/.unpacked-$DEB_VERSION"
fi

work="$CACHE/ffmpeg-build-$key"
rm -rf "$work" "$prefix.partial"
mkdir -p "$work"
log "configuring FFmpeg $UPSTREAM (Debian $DEB_VERSION) in $work"
(cd "$work" && flock "$LOCK" "$src/configure" --prefix="$prefix.partial" "${configure_args[@]}" \
  --extra-cflags="-O2" >configure.log 2>&1) || { tail -30 "$work/configure.log" >&2; exit 1; }
log "building with -j$JOBS under $LOCK"
(cd "$work" && flock "$LOCK" make -j"$JOBS" >make.log 2>&1 && make install >>make.log 2>&1) ||
  { tail -30 "$work/make.log" >&2; exit 1; }
cp "$work/configure.log" "$prefix.partial/configure.log"
touch "$prefix.partial/.complete"
mv "$prefix.partial" "$prefix"
# pkg-config files name the install prefix: point them at the final folder.
sed -i "s|$prefix.partial|$prefix|g" "$prefix"/lib/pkgconfig/*.pc
rm -rf "$work"
log "built $prefix"
echo "$prefix"
