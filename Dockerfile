# syntax=docker/dockerfile:1
# Runtime image: Debian 12, FFmpeg's runtime libraries and the CPU bundle in /opt/vidcls.
# Build the bundle first:  scripts/package.sh cpu && docker build -t vidcls .
# The build context is bind-mounted (BuildKit, the default builder since Docker 23), not
# copied, so the archive adds no layer to the image.
FROM debian:12-slim
RUN --mount=type=bind,target=/src \
    bash /src/scripts/install-bundle.sh /src/dist/vidcls-*-linux-x86_64-cpu.tar.gz /opt/vidcls
ENV PATH=/opt/vidcls/bin:$PATH
ENTRYPOINT ["vidcls"]
