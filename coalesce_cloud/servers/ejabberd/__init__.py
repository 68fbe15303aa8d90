"""ejabberd: its configuration (:mod:`.config`), one managed node (:mod:`.node`), a cluster on one host
(:mod:`.cluster`), and the production files in ``deploy/ejabberd/`` (:mod:`.deploy`), all rendered by the
same code so that development, the tests and production agree on every security setting."""

from coalesce_cloud.servers.ejabberd.cluster import EjabberdCluster, EjabberdPorts
from coalesce_cloud.servers.ejabberd.config import (
    API_COMMANDS,
    DistMode,
    EjabberdConfig,
    JsonValue,
    render_ejabberd_yml,
    render_ejabberdctl_cfg,
)
from coalesce_cloud.servers.ejabberd.node import EjabberdNode

__all__ = [
    "API_COMMANDS",
    "DistMode",
    "EjabberdCluster",
    "EjabberdConfig",
    "EjabberdNode",
    "EjabberdPorts",
    "JsonValue",
    "render_ejabberd_yml",
    "render_ejabberdctl_cfg",
]
