# syntax=docker/dockerfile:1
# check=skip=JSONArgsRecommended

# Every instruction, in the forms people write.
ARG BASE=alpine
ARG VERSION=3.19
FROM --platform=linux/amd64 ${BASE}:${VERSION} AS Builder
LABEL maintainer="ops@example.com" org.opencontainers.image.version=$VERSION
MAINTAINER Jane Doe <jane@example.com>
ENV APP=/opt/app \
    PATH=/opt/app/bin:$PATH
ENV LEGACY some spaced value
ARG USER_ID=1000 GROUP
WORKDIR $APP
RUN --mount=type=cache,target=/root/.cache,id=pip,sharing=locked \
    --mount=type=secret,id=token,required \
    --mount=type=bind,from=deps,source=/out,target=/deps,rw \
    --network=none \
    pip install -r /deps/requirements.txt
RUN ["/bin/sh", "-c", "echo exec form"]
COPY --from=deps --chown=${USER_ID}:${USER_ID} --chmod=0644 --link --exclude=*.pyc src/ ./src/
COPY ["with space.txt", "./"]
ADD --checksum=sha256:24454f830cdb571e2c4ad15481119c43b3cafd48dd869a9b2945d1036d1dc68d \
    https://example.com/archive.tar.gz /tmp/
EXPOSE 8080 53/udp 9000-9002
VOLUME ["/data", "$APP/cache"]
VOLUME /logs /tmp/spool
USER ${USER_ID}:${GROUP:-users}
SHELL ["/bin/bash", "-o", "pipefail", "-c"]
HEALTHCHECK --interval=30s --timeout=3s --start-period=5s --retries=3 \
    CMD curl -fsS http://localhost:8080/health || exit 1
STOPSIGNAL SIGQUIT
ONBUILD COPY . /src
ENTRYPOINT ["/opt/app/bin/server"]
CMD ["--serve"]

FROM scratch
HEALTHCHECK NONE
CMD ["/hello"]
