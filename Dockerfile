FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml README.md ./
COPY labflow ./labflow
COPY workers ./workers
COPY protocols ./protocols
RUN pip install --no-cache-dir .
USER nobody
EXPOSE 8000
CMD ["labflow", "serve", "--host", "0.0.0.0"]
