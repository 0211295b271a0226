"""Admin API for GPU servers: list with health, add, edit, drain/remove, check now."""

from __future__ import annotations

from ninja import Router

from accounts.auth import AdminAuth
from core.openapi import ErrorOut
from nodes import health, services
from nodes.models import ComfyNode
from nodes.schemas import ModelFileOut, NodeDeletedOut, NodeIn, NodeModelsOut, NodeOut, NodePatchIn

router = Router(tags=["admin: GPU servers"], auth=AdminAuth())
models_router = Router(tags=["admin: GPU servers"], auth=AdminAuth())


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


@router.post(
    "/{int:node_id}/refresh",
    response=NodeOut,
    summary="Read the GPU server's node classes and model files now (a file just added is offered at once)",
)
def refresh_node(request, node_id: int):
    services.get_node(node_id)
    return health.refresh_node(node_id)


@router.get("/{int:node_id}/models", response=NodeModelsOut, summary="The GPU server's model files by folder")
def node_models(request, node_id: int):
    node = services.get_node(node_id)
    return {
        "node": node.name,
        "inventory_read_at": node.inventory_read_at,
        "inventory_stale": node.inventory_stale,
        "models": node.inventory or {},
        "held_models": node.held_model_keys,
    }


@models_router.get(
    "",
    response=list[ModelFileOut],
    summary="Every model file on the farm with the GPU servers that have it",
    description="`folder` filters by model folder (exact); `name` by a part of the file name, or by a "
    "glob such as `sdxl/*` when it holds *, ? or [.",
)
def list_models(request, folder: str = "", name: str = ""):
    return services.model_files(folder=folder[:100], name=name[:200])
