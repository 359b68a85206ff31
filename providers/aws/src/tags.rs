//! Labels as EC2 tags, and the filters that find tagged resources.

use aws_sdk_ec2::types::{Filter, ResourceType, Tag, TagSpecification};
use munero_provider::{Labels, LABEL_MANAGED, LABEL_TRIAL};

/// The console shows this tag as the resource's name.
pub const NAME: &str = "Name";

pub fn to_labels(tags: &[Tag]) -> Labels {
    tags.iter().filter_map(|t| Some((t.key()?.to_string(), t.value().unwrap_or_default().to_string()))).collect()
}

pub fn to_tags(labels: &Labels, name: Option<&str>) -> Vec<Tag> {
    let mut out: Vec<Tag> = labels.iter().map(|(k, v)| Tag::builder().key(k).value(v).build()).collect();
    if let Some(n) = name {
        out.push(Tag::builder().key(NAME).value(n).build());
    }
    out
}

/// One TagSpecification per resource type, so each exists tagged from its first moment.
pub fn specs(types: &[ResourceType], labels: &Labels, name: Option<&str>) -> Vec<TagSpecification> {
    types
        .iter()
        .map(|t| TagSpecification::builder().resource_type(t.clone()).set_tags(Some(to_tags(labels, name))).build())
        .collect()
}

pub fn filter(name: &str, value: &str) -> Filter {
    Filter::builder().name(name).values(value).build()
}

/// `tag:munero-managed=true`, and the trial's tag when given.
pub fn managed_filters(trial: Option<&str>) -> Vec<Filter> {
    let mut f = vec![filter(&format!("tag:{LABEL_MANAGED}"), "true")];
    if let Some(t) = trial {
        f.push(filter(&format!("tag:{LABEL_TRIAL}"), t));
    }
    f
}

pub fn name_of(labels: &Labels) -> Option<&str> {
    labels.get(NAME).map(String::as_str)
}
