//! Storage: PersistentVolumes, PersistentVolumeClaims, StorageClasses, CSIDrivers, CSINodes and
//! VolumeAttachments.
//!
//! Fields the server defaults (reclaim policy, volume mode, binding mode, CSI driver flags) print
//! as their defaults when a stored object lacks them.

use std::collections::BTreeMap;
use std::sync::LazyLock;

use k8s_openapi::api::core::v1::{
    PersistentVolumeClaimSpec, PersistentVolumeClaimStatus, PersistentVolumeSpec,
    PersistentVolumeStatus,
};
use k8s_openapi::api::storage::v1::{
    CSIDriverSpec, StorageClass, VolumeAttachmentSource, VolumeAttachmentSpec,
    VolumeAttachmentStatus,
};
use serde::Deserialize;
use serde_json::Value;

use crate::columns::{self, Column, doc};
use crate::format;
use crate::quantity;
use crate::table::{Ctx, Printer, Row, TableError, count, decode, name, s};
use crate::view::{Count, LabeledMeta, Meta};

const BETA_STORAGE_CLASS_ANNOTATION: &str = "volume.beta.kubernetes.io/storage-class";

fn storage_of(capacity: &BTreeMap<&str, &str>) -> String {
    capacity
        .get("storage")
        .map_or_else(|| "0".to_string(), |q| quantity::canonical(q))
}

fn phase(meta: &LabeledMeta<'_>, phase: Option<&str>) -> String {
    if meta.deletion_timestamp.is_some() {
        return "Terminating".to_string();
    }
    phase.unwrap_or("Pending").to_string()
}

/// The volume or claim fields the two printers read; the same names in both specs.
#[derive(Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
struct VolumeSpecView<'a> {
    #[serde(borrow)]
    capacity: BTreeMap<&'a str, &'a str>,
    #[serde(borrow)]
    access_modes: Vec<&'a str>,
    persistent_volume_reclaim_policy: Option<&'a str>,
    #[serde(borrow)]
    claim_ref: Option<ClaimRefView<'a>>,
    storage_class_name: Option<&'a str>,
    volume_attributes_class_name: Option<&'a str>,
    volume_mode: Option<&'a str>,
    volume_name: Option<&'a str>,
}

#[derive(Default, Deserialize)]
#[serde(default)]
struct ClaimRefView<'a> {
    namespace: Option<&'a str>,
    name: Option<&'a str>,
}

#[derive(Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
struct VolumeStatusView<'a> {
    phase: Option<&'a str>,
    reason: Option<&'a str>,
    #[serde(borrow)]
    capacity: BTreeMap<&'a str, &'a str>,
    #[serde(borrow)]
    access_modes: Vec<&'a str>,
}

#[derive(Default, Deserialize)]
#[serde(default)]
struct VolumeView<'a> {
    #[serde(borrow)]
    metadata: LabeledMeta<'a>,
    #[serde(borrow)]
    spec: VolumeSpecView<'a>,
    #[serde(borrow)]
    status: VolumeStatusView<'a>,
}

static PV_COLUMNS: LazyLock<Value> = LazyLock::new(|| {
    columns::to_json([
        columns::name(),
        Column::string("Capacity", doc::<PersistentVolumeSpec>("capacity")),
        Column::string("Access Modes", doc::<PersistentVolumeSpec>("accessModes")),
        Column::string(
            "Reclaim Policy",
            doc::<PersistentVolumeSpec>("persistentVolumeReclaimPolicy"),
        ),
        Column::string("Status", doc::<PersistentVolumeStatus>("phase")),
        Column::string("Claim", doc::<PersistentVolumeSpec>("claimRef")),
        Column::string("StorageClass", "StorageClass of the pv"),
        Column::string("VolumeAttributesClass", "VolumeAttributesClass of the pv"),
        Column::string("Reason", doc::<PersistentVolumeStatus>("reason")),
        columns::age(),
        Column::string("VolumeMode", doc::<PersistentVolumeSpec>("volumeMode")).wide(),
    ])
});

pub(crate) static PERSISTENT_VOLUME: Printer = Printer {
    columns: &PV_COLUMNS,
    row: pv_row,
};

fn pv_row(obj: &Value, ctx: &Ctx) -> Result<Row, TableError> {
    let pv: VolumeView<'_> = decode(obj, "PersistentVolume")?;
    let spec = &pv.spec;
    let claim = spec.claim_ref.as_ref().map_or_else(String::new, |c| {
        format!(
            "{}/{}",
            c.namespace.unwrap_or_default(),
            c.name.unwrap_or_default()
        )
    });
    let class = pv
        .metadata
        .annotation(BETA_STORAGE_CLASS_ANNOTATION)
        .or(spec.storage_class_name)
        .unwrap_or_default();
    let meta = pv.metadata.meta();
    Ok(vec![
        name(&meta),
        s(storage_of(&spec.capacity)),
        s(format::access_modes(&spec.access_modes)),
        s(spec.persistent_volume_reclaim_policy.unwrap_or("Retain")),
        s(phase(&pv.metadata, pv.status.phase)),
        s(claim),
        s(class),
        s(spec.volume_attributes_class_name.unwrap_or("<unset>")),
        s(pv.status.reason.unwrap_or_default()),
        ctx.age(&meta),
        s(spec.volume_mode.unwrap_or("Filesystem")),
    ]
    .into())
}

static PVC_COLUMNS: LazyLock<Value> = LazyLock::new(|| {
    columns::to_json([
        columns::name(),
        Column::string("Status", doc::<PersistentVolumeClaimStatus>("phase")),
        Column::string("Volume", doc::<PersistentVolumeClaimSpec>("volumeName")),
        Column::string("Capacity", doc::<PersistentVolumeClaimStatus>("capacity")),
        Column::string(
            "Access Modes",
            doc::<PersistentVolumeClaimStatus>("accessModes"),
        ),
        Column::string("StorageClass", "StorageClass of the pvc"),
        Column::string("VolumeAttributesClass", "VolumeAttributesClass of the pvc"),
        columns::age(),
        Column::string("VolumeMode", doc::<PersistentVolumeClaimSpec>("volumeMode")).wide(),
    ])
});

pub(crate) static PERSISTENT_VOLUME_CLAIM: Printer = Printer {
    columns: &PVC_COLUMNS,
    row: pvc_row,
};

fn pvc_row(obj: &Value, ctx: &Ctx) -> Result<Row, TableError> {
    let pvc: VolumeView<'_> = decode(obj, "PersistentVolumeClaim")?;
    let spec = &pvc.spec;
    let status = &pvc.status;
    let volume = spec.volume_name.unwrap_or_default();
    // Capacity and access modes are only meaningful once the claim is bound to a volume.
    let (capacity, access) = if volume.is_empty() {
        (String::new(), String::new())
    } else {
        (
            storage_of(&status.capacity),
            format::access_modes(&status.access_modes),
        )
    };
    let class = pvc
        .metadata
        .annotation(BETA_STORAGE_CLASS_ANNOTATION)
        .or(spec.storage_class_name)
        .unwrap_or_default();
    let meta = pvc.metadata.meta();
    Ok(vec![
        name(&meta),
        s(phase(&pvc.metadata, status.phase)),
        s(volume),
        s(capacity),
        s(access),
        s(class),
        s(spec.volume_attributes_class_name.unwrap_or("<unset>")),
        ctx.age(&meta),
        s(spec.volume_mode.unwrap_or("Filesystem")),
    ]
    .into())
}

static STORAGE_CLASS_COLUMNS: LazyLock<Value> = LazyLock::new(|| {
    columns::to_json([
        columns::name(),
        Column::string("Provisioner", doc::<StorageClass>("provisioner")),
        Column::string("ReclaimPolicy", doc::<StorageClass>("reclaimPolicy")),
        Column::string(
            "VolumeBindingMode",
            doc::<StorageClass>("volumeBindingMode"),
        ),
        Column::string(
            "AllowVolumeExpansion",
            doc::<StorageClass>("allowVolumeExpansion"),
        ),
        columns::age(),
    ])
});

pub(crate) static STORAGE_CLASS: Printer = Printer {
    columns: &STORAGE_CLASS_COLUMNS,
    row: storage_class_row,
};

#[derive(Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
struct StorageClassView<'a> {
    #[serde(borrow)]
    metadata: LabeledMeta<'a>,
    provisioner: &'a str,
    reclaim_policy: Option<&'a str>,
    volume_binding_mode: Option<&'a str>,
    allow_volume_expansion: Option<bool>,
}

fn storage_class_row(obj: &Value, ctx: &Ctx) -> Result<Row, TableError> {
    let sc: StorageClassView<'_> = decode(obj, "StorageClass")?;
    let is_default = [
        "storageclass.kubernetes.io/is-default-class",
        "storageclass.beta.kubernetes.io/is-default-class",
    ]
    .iter()
    .any(|k| sc.metadata.annotation(k) == Some("true"));
    let mut shown_name = sc.metadata.name().to_string();
    if is_default {
        shown_name.push_str(" (default)");
    }
    Ok(vec![
        s(shown_name),
        s(sc.provisioner),
        s(sc.reclaim_policy.unwrap_or("Delete")),
        s(sc.volume_binding_mode.unwrap_or("Immediate")),
        Value::Bool(sc.allow_volume_expansion.unwrap_or(false)),
        ctx.age(&sc.metadata.meta()),
    ]
    .into())
}

static CSI_DRIVER_COLUMNS: LazyLock<Value> = LazyLock::new(|| {
    let flag = |name, field| Column::new(name, "boolean", doc::<CSIDriverSpec>(field));
    columns::to_json([
        columns::name(),
        flag("AttachRequired", "attachRequired"),
        flag("PodInfoOnMount", "podInfoOnMount"),
        flag("StorageCapacity", "storageCapacity"),
        Column::string("TokenRequests", doc::<CSIDriverSpec>("tokenRequests")),
        flag("RequiresRepublish", "requiresRepublish"),
        Column::string("Modes", doc::<CSIDriverSpec>("volumeLifecycleModes")),
        columns::age(),
    ])
});

pub(crate) static CSI_DRIVER: Printer = Printer {
    columns: &CSI_DRIVER_COLUMNS,
    row: csi_driver_row,
};

#[derive(Default, Deserialize)]
#[serde(default)]
struct CsiDriverView<'a> {
    #[serde(borrow)]
    metadata: Meta<'a>,
    spec: CSIDriverSpec,
}

fn csi_driver_row(obj: &Value, ctx: &Ctx) -> Result<Row, TableError> {
    let d: CsiDriverView<'_> = decode(obj, "CSIDriver")?;
    let spec = d.spec;
    let token_requests = spec.token_requests.as_ref().map_or_else(
        || "<unset>".to_string(),
        |t| {
            t.iter()
                .map(|t| t.audience.as_str())
                .collect::<Vec<_>>()
                .join(",")
        },
    );
    // The server defaults an empty mode list to Persistent.
    let modes = spec
        .volume_lifecycle_modes
        .filter(|m| !m.is_empty())
        .map_or_else(|| "Persistent".to_string(), |m| m.join(","));
    Ok(vec![
        name(&d.metadata),
        Value::Bool(spec.attach_required.unwrap_or(true)),
        Value::Bool(spec.pod_info_on_mount.unwrap_or(false)),
        Value::Bool(spec.storage_capacity.unwrap_or(false)),
        s(token_requests),
        Value::Bool(spec.requires_republish.unwrap_or(false)),
        s(modes),
        ctx.age(&d.metadata),
    ]
    .into())
}

static CSI_NODE_COLUMNS: LazyLock<Value> = LazyLock::new(|| {
    columns::to_json([
        columns::name(),
        Column::new(
            "Drivers",
            "integer",
            "Drivers indicates the number of CSI drivers registered on the node",
        ),
        columns::age(),
    ])
});

pub(crate) static CSI_NODE: Printer = Printer {
    columns: &CSI_NODE_COLUMNS,
    row: csi_node_row,
};

#[derive(Default, Deserialize)]
#[serde(default)]
struct CsiNodeView<'a> {
    #[serde(borrow)]
    metadata: Meta<'a>,
    spec: CsiNodeSpecView,
}

#[derive(Default, Deserialize)]
#[serde(default)]
struct CsiNodeSpecView {
    drivers: Count,
}

fn csi_node_row(obj: &Value, ctx: &Ctx) -> Result<Row, TableError> {
    let n: CsiNodeView<'_> = decode(obj, "CSINode")?;
    Ok(vec![
        name(&n.metadata),
        count(n.spec.drivers.0),
        ctx.age(&n.metadata),
    ]
    .into())
}

static VOLUME_ATTACHMENT_COLUMNS: LazyLock<Value> = LazyLock::new(|| {
    columns::to_json([
        columns::name(),
        Column::string("Attacher", doc::<VolumeAttachmentSpec>("attacher")).named(),
        Column::string("PV", doc::<VolumeAttachmentSource>("persistentVolumeName")),
        Column::string("Node", doc::<VolumeAttachmentSpec>("nodeName")),
        Column::new(
            "Attached",
            "boolean",
            doc::<VolumeAttachmentStatus>("attached"),
        ),
        columns::age(),
    ])
});

pub(crate) static VOLUME_ATTACHMENT: Printer = Printer {
    columns: &VOLUME_ATTACHMENT_COLUMNS,
    row: volume_attachment_row,
};

#[derive(Default, Deserialize)]
#[serde(default)]
struct VolumeAttachmentView<'a> {
    #[serde(borrow)]
    metadata: Meta<'a>,
    #[serde(borrow)]
    spec: AttachmentSpecView<'a>,
    status: AttachmentStatusView,
}

#[derive(Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
struct AttachmentSpecView<'a> {
    attacher: &'a str,
    node_name: &'a str,
    #[serde(borrow)]
    source: AttachmentSourceView<'a>,
}

#[derive(Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
struct AttachmentSourceView<'a> {
    persistent_volume_name: Option<&'a str>,
}

#[derive(Default, Deserialize)]
#[serde(default)]
struct AttachmentStatusView {
    attached: bool,
}

fn volume_attachment_row(obj: &Value, ctx: &Ctx) -> Result<Row, TableError> {
    let va: VolumeAttachmentView<'_> = decode(obj, "VolumeAttachment")?;
    let spec = &va.spec;
    Ok(vec![
        name(&va.metadata),
        s(spec.attacher),
        s(spec.source.persistent_volume_name.unwrap_or_default()),
        s(spec.node_name),
        Value::Bool(va.status.attached),
        ctx.age(&va.metadata),
    ]
    .into())
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use crate::kinds::testutil::{ago, cells, header_line};

    #[test]
    fn persistent_volumes() {
        assert_eq!(
            header_line("", "v1", "PersistentVolume"),
            "NAME CAPACITY ACCESS MODES RECLAIM POLICY STATUS CLAIM STORAGECLASS VOLUMEATTRIBUTESCLASS REASON AGE [VOLUMEMODE]"
        );
        let pv = json!({
            "metadata": {"name": "pv-1", "creationTimestamp": ago(600)},
            "spec": {"capacity": {"storage": "10240Mi"}, "accessModes": ["ReadWriteOnce", "ReadOnlyMany"],
                     "persistentVolumeReclaimPolicy": "Delete", "storageClassName": "local-path",
                     "claimRef": {"namespace": "default", "name": "data"}, "hostPath": {"path": "/data"}},
            "status": {"phase": "Bound"},
        });
        assert_eq!(
            cells("", "v1", "PersistentVolume", pv),
            json!([
                "pv-1",
                "10Gi",
                "RWO,ROX",
                "Delete",
                "Bound",
                "default/data",
                "local-path",
                "<unset>",
                "",
                "10m",
                "Filesystem"
            ])
        );
        let released = json!({
            "metadata": {"name": "pv-2", "deletionTimestamp": ago(1),
                         "annotations": {"volume.beta.kubernetes.io/storage-class": "old"}},
            "spec": {"storageClassName": "new", "volumeMode": "Block", "volumeAttributesClassName": "gold"},
            "status": {"phase": "Failed", "reason": "Recycler failed"},
        });
        assert_eq!(
            cells("", "v1", "PersistentVolume", released),
            json!([
                "pv-2",
                "0",
                "",
                "Retain",
                "Terminating",
                "",
                "old",
                "gold",
                "Recycler failed",
                "<unknown>",
                "Block"
            ])
        );
    }

    #[test]
    fn persistent_volume_claims() {
        assert_eq!(
            header_line("", "v1", "PersistentVolumeClaim"),
            "NAME STATUS VOLUME CAPACITY ACCESS MODES STORAGECLASS VOLUMEATTRIBUTESCLASS AGE [VOLUMEMODE]"
        );
        let bound = json!({
            "metadata": {"name": "data", "creationTimestamp": ago(60)},
            "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}},
                     "storageClassName": "local-path", "volumeName": "pvc-1234", "volumeMode": "Filesystem"},
            "status": {"phase": "Bound", "accessModes": ["ReadWriteOnce"], "capacity": {"storage": "1Gi"}},
        });
        assert_eq!(
            cells("", "v1", "PersistentVolumeClaim", bound),
            json!([
                "data",
                "Bound",
                "pvc-1234",
                "1Gi",
                "RWO",
                "local-path",
                "<unset>",
                "60s",
                "Filesystem"
            ])
        );
        let pending = json!({
            "metadata": {"name": "wait"},
            "spec": {"accessModes": ["ReadWriteMany"], "resources": {"requests": {"storage": "5Gi"}}},
            "status": {"phase": "Pending"},
        });
        assert_eq!(
            cells("", "v1", "PersistentVolumeClaim", pending),
            json!([
                "wait",
                "Pending",
                "",
                "",
                "",
                "",
                "<unset>",
                "<unknown>",
                "Filesystem"
            ])
        );
    }

    #[test]
    fn storage_classes() {
        assert_eq!(
            header_line("storage.k8s.io", "v1", "StorageClass"),
            "NAME PROVISIONER RECLAIMPOLICY VOLUMEBINDINGMODE ALLOWVOLUMEEXPANSION AGE"
        );
        let sc = json!({
            "metadata": {"name": "local-path", "creationTimestamp": ago(86400 * 2),
                         "annotations": {"storageclass.kubernetes.io/is-default-class": "true"}},
            "provisioner": "rancher.io/local-path", "reclaimPolicy": "Delete",
            "volumeBindingMode": "WaitForFirstConsumer",
        });
        assert_eq!(
            cells("storage.k8s.io", "v1", "StorageClass", sc),
            json!([
                "local-path (default)",
                "rancher.io/local-path",
                "Delete",
                "WaitForFirstConsumer",
                false,
                "2d"
            ])
        );
        let plain = json!({"metadata": {"name": "fast"}, "provisioner": "csi.example.com",
                           "allowVolumeExpansion": true});
        assert_eq!(
            cells("storage.k8s.io", "v1", "StorageClass", plain),
            json!([
                "fast",
                "csi.example.com",
                "Delete",
                "Immediate",
                true,
                "<unknown>"
            ])
        );
    }

    #[test]
    fn csi_objects() {
        assert_eq!(
            header_line("storage.k8s.io", "v1", "CSIDriver"),
            "NAME ATTACHREQUIRED PODINFOONMOUNT STORAGECAPACITY TOKENREQUESTS REQUIRESREPUBLISH MODES AGE"
        );
        let d = json!({"metadata": {"name": "hostpath.csi.k8s.io", "creationTimestamp": ago(30)},
                       "spec": {"attachRequired": false, "podInfoOnMount": true,
                                "volumeLifecycleModes": ["Persistent", "Ephemeral"],
                                "tokenRequests": [{"audience": "vault"}, {"audience": "gcp"}]}});
        assert_eq!(
            cells("storage.k8s.io", "v1", "CSIDriver", d),
            json!([
                "hostpath.csi.k8s.io",
                false,
                true,
                false,
                "vault,gcp",
                false,
                "Persistent,Ephemeral",
                "30s"
            ])
        );
        let bare = json!({"metadata": {"name": "x"}, "spec": {}});
        assert_eq!(
            cells("storage.k8s.io", "v1", "CSIDriver", bare),
            json!([
                "x",
                true,
                false,
                false,
                "<unset>",
                false,
                "Persistent",
                "<unknown>"
            ])
        );

        assert_eq!(
            header_line("storage.k8s.io", "v1", "CSINode"),
            "NAME DRIVERS AGE"
        );
        let n = json!({"metadata": {"name": "node-1"},
                       "spec": {"drivers": [{"name": "a", "nodeID": "n"}, {"name": "b", "nodeID": "n"}]}});
        assert_eq!(
            cells("storage.k8s.io", "v1", "CSINode", n),
            json!(["node-1", 2, "<unknown>"])
        );

        assert_eq!(
            header_line("storage.k8s.io", "v1", "VolumeAttachment"),
            "NAME ATTACHER PV NODE ATTACHED AGE"
        );
        let va = json!({"metadata": {"name": "csi-123", "creationTimestamp": ago(5)},
                        "spec": {"attacher": "hostpath.csi.k8s.io", "nodeName": "node-1",
                                 "source": {"persistentVolumeName": "pv-1"}},
                        "status": {"attached": true}});
        assert_eq!(
            cells("storage.k8s.io", "v1", "VolumeAttachment", va),
            json!([
                "csi-123",
                "hostpath.csi.k8s.io",
                "pv-1",
                "node-1",
                true,
                "5s"
            ])
        );
    }
}
