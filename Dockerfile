# The study's pinned environment as a container (the same pins as requirements/*.txt; checked by
# tests/test_environment_files.py). Not built on the development machine: no Docker engine runs there.
#   docker build -t facexai .
#   docker run --rm -v "$PWD/figures:/study/figures" facexai            # ./run_all.sh (quick profile)
#   docker run --rm facexai ./run_tests.sh
FROM python:3.11-slim
RUN apt-get update && apt-get install -y --no-install-recommends git libgl1 libglib2.0-0 \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /study
ENV FACEXAI_VENV=/opt/venv
RUN python -m venv /opt/venv
# CPU builds of torch and torchvision (their compiled ops match); a CUDA image would use the default index.
RUN /opt/venv/bin/pip install --no-cache-dir torch==2.13.0 torchvision==0.28.0 \
    --index-url https://download.pytorch.org/whl/cpu
COPY requirements/ requirements/
RUN /opt/venv/bin/pip install --no-cache-dir -c requirements/constraints.txt -r requirements/base.txt \
    && /opt/venv/bin/pip install --no-cache-dir --no-deps -r requirements/nodeps.txt
COPY . .
# tools/bootstrap.sh finds the installed pins and only adds the editable package and the kernel.
RUN ./tools/bootstrap.sh
CMD ["./run_all.sh"]
