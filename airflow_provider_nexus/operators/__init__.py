"""Nexus operators; each works on its own with plain keyword arguments."""

from airflow_provider_nexus.operators.core import NexusCoreOperator
from airflow_provider_nexus.operators.final import NexusFinalOperator
from airflow_provider_nexus.operators.raw import NexusRawOperator
from airflow_provider_nexus.operators.resolution import NexusResolutionOperator
from airflow_provider_nexus.operators.source import NexusSourceOperator

__all__ = [
    "NexusCoreOperator",
    "NexusFinalOperator",
    "NexusRawOperator",
    "NexusResolutionOperator",
    "NexusSourceOperator",
]
