"""Graph layers (keras.ops only): a blocked top-K neighbour-graph builder
and message passing over the graph it builds."""

from tfcvr.layers.graph.graph_propagation import GraphPropagation
from tfcvr.layers.graph.top_k_neighbour_graph import TopKNeighbourGraph

__all__ = ["GraphPropagation", "TopKNeighbourGraph"]
