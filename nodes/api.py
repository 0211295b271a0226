"""Admin API for GPU nodes: list with health, add, edit, drain/remove, check now."""

from __future__ import annotations

from ninja import Router

from accounts.auth import AdminAuth
from core.openapi import ErrorOut
from nodes import health, services
from nodes.models import ComfyNode
from nodes.schemas import NodeDeletedOut, NodeIn, NodeOut, NodePatchIn

router = Router(tags=["admin: nodes"], auth=AdminAuth())


@router.get("", response=list[NodeOut])
def list_nodes(request):
    return list(ComfyNode.objects.filter(remove_when_drained=False))


@router.post("", response={201: NodeOut, 409: ErrorOut})
def create_node(request, payload: NodeIn):
    return 201, services.create_node(**payload.dict())


@router.get("/{int:node_id}", response=NodeOut)
def get_node(request, node_id: int):
    return services.get_node(node_id)


@router.patch("/{int:node_id}", response={200: NodeOut, 409: ErrorOut})
def update_node(request, node_id: int, payload: NodePatchIn):
    node = services.update_node(node=services.get_node(node_id), changes=payload.dict(exclude_unset=True))
    node.note = services.drain_note(node)
    return node


@router.delete("/{int:node_id}", response=NodeDeletedOut)
def delete_node(request, node_id: int):
    return {"detail": services.delete_node(node=services.get_node(node_id))}


@router.post("/{int:node_id}/check", response=NodeOut, summary="Health-check now and return the fresh state")
def check_node(request, node_id: int):
    services.get_node(node_id)
    return health.check_node(node_id)
