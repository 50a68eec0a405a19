"""The Kafka broker's jars and the Java that runs them.

``fetch()`` runs Maven on ``kafka/pom.xml`` to copy the broker and its runtime dependencies into
``kafka/libs/`` (git-ignored; Maven's ``~/.m2`` cache makes re-runs take seconds); a stamp of the
pom's digest says whether the jars are current. ``./dev setup`` calls it through
``python -m cli.kafka fetch``.
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import subprocess
from pathlib import Path

logger = logging.getLogger(__name__)

KAFKA_DIR = Path(__file__).resolve().parents[1] / "kafka"
_STAMP = ".pom.sha256"


class KafkaSetupError(RuntimeError):
    """Java or Maven is missing, or the Kafka jars could not be fetched."""


def _tool(name: str, hint: str) -> str:
    found = shutil.which(name)
    if not found:
        raise KafkaSetupError(f"`{name}` was not found on PATH; {hint}")
    return found


def find_java() -> str | None:
    """``$JAVA_HOME/bin/java`` if it exists, else the ``java`` on PATH, else None."""
    home = os.environ.get("JAVA_HOME")
    if home and (Path(home) / "bin" / "java").is_file():
        return str(Path(home) / "bin" / "java")
    return shutil.which("java")


def java_executable() -> str:
    """The ``java`` to run the broker with: ``$JAVA_HOME/bin/java``, else the one on PATH.

    Raises:
        KafkaSetupError: No Java runtime was found.
    """
    java = find_java()
    if java is None:
        raise KafkaSetupError(
            "`java` was not found (no $JAVA_HOME/bin/java, none on PATH); install a Java 17+ "
            "runtime (e.g. apt-get install openjdk-17-jre-headless)"
        )
    return java


def _pom_digest(kafka_dir: Path) -> str:
    return hashlib.sha256((kafka_dir / "pom.xml").read_bytes()).hexdigest()


def libs_fresh(kafka_dir: Path = KAFKA_DIR) -> bool:
    """Whether ``kafka_dir/libs`` holds the jars of the current ``pom.xml``."""
    libs = kafka_dir / "libs"
    try:
        current = (libs / _STAMP).read_text().strip() == _pom_digest(kafka_dir)
    except OSError:
        return False
    return current and any(libs.glob("kafka_2.13-*.jar"))


def fetch(kafka_dir: Path = KAFKA_DIR, *, force: bool = False) -> Path:
    """Copy the Kafka broker jars into ``kafka_dir/libs`` with Maven, unless they are current.

    Args:
        kafka_dir: Folder holding ``pom.xml`` (the repository's ``kafka/``).
        force: Fetch again even if the jars match the pom.

    Returns:
        The ``libs`` folder.

    Raises:
        KafkaSetupError: Maven or Java is missing, or Maven failed (its output is included).
    """
    libs = kafka_dir / "libs"
    if not force and libs_fresh(kafka_dir):
        logger.info("kafka jars are current in %s", libs)
        return libs
    java_executable()
    mvn = _tool("mvn", "install Apache Maven 3.6+ (e.g. apt-get install maven)")
    if libs.exists():
        shutil.rmtree(libs)
    logger.info("fetching the Kafka jars with Maven into %s", libs)
    command = [mvn, "-q", "-B", "-Dstyle.color=never", "-f", str(kafka_dir / "pom.xml")]
    command.append("dependency:copy-dependencies")
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    jars = list(libs.glob("*.jar")) if libs.exists() else []
    if result.returncode != 0 or not any(j.name.startswith("kafka_2.13-") for j in jars):
        output = (result.stdout + result.stderr).strip()[-4000:]
        raise KafkaSetupError(
            f"maven could not fetch the Kafka jars (exit {result.returncode}) for "
            f"{kafka_dir / 'pom.xml'}:\n{output}"
        )
    (libs / _STAMP).write_text(_pom_digest(kafka_dir) + "\n")
    logger.info("fetched %d jars into %s", len(jars), libs)
    return libs
