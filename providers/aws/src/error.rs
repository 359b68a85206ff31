//! AWS error codes to `ProviderError`s whose message says what to do. The one place that reads
//! EC2 error codes; every call site passes the API action, so a refusal names the permission.

use aws_sdk_ec2::config::http::HttpResponse;
use aws_sdk_ec2::error::{ProvideErrorMetadata, SdkError};
use munero_provider::{error_chain, ProviderError};

/// The quota new accounts have at 0, which a `--size gpu` trial needs raised.
pub const GPU_QUOTA: &str = "Running On-Demand G and VT instances";
pub const GPU_QUOTA_CODE: &str = "L-DB2E81BA";
pub const STANDARD_QUOTA: &str = "Running On-Demand Standard (A, C, D, H, I, M, R, T, Z) instances";
pub const STANDARD_QUOTA_CODE: &str = "L-1216C47A";

/// Where the minimal policy is written down.
pub const POLICY_HINT: &str = "the minimal policy is in README.md, section \"AWS\"";

/// An SDK error from calling `action` (the EC2 API action name, e.g. "RunInstances").
pub fn sdk<E>(action: &'static str, e: SdkError<E, HttpResponse>) -> ProviderError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    match &e {
        SdkError::ServiceError(se) => {
            let status = se.raw().status().as_u16();
            let code = e.code().unwrap_or("Unknown").to_string();
            let message = e.message().unwrap_or_default().to_string();
            match classify(action, &code, &message) {
                // An answer without an EC2 error body: its HTTP status is all there is to go by.
                ProviderError::Api { code, message, .. } if status >= 500 => ProviderError::Api { status, code, message },
                other => other,
            }
        }
        SdkError::TimeoutError(_) => ProviderError::Timeout(format!("ec2:{action}: {}", error_chain(&e))),
        SdkError::DispatchFailure(_) | SdkError::ResponseError(_) => {
            ProviderError::Transport(format!("ec2:{action}: {} (is AWS_ENDPOINT_URL or the network right?)", error_chain(&e)))
        }
        _ => ProviderError::Other(format!("ec2:{action}: {}", error_chain(&e))),
    }
}

/// An EC2 error code and message as the error a user can act on. Pure.
pub fn classify(action: &str, code: &str, message: &str) -> ProviderError {
    let api = |status| ProviderError::Api { status, code: code.to_string(), message: format!("ec2:{action}: {message}") };
    match code {
        c if c.ends_with(".NotFound") || c == "InvalidAMIID.Unavailable" => {
            ProviderError::NotFound { kind: c.trim_end_matches(".NotFound").to_string(), id: message.to_string() }
        }
        "UnauthorizedOperation" | "AccessDenied" | "AccessDeniedException" => ProviderError::Other(format!(
            "AWS refused ec2:{action} ({code}): allow \"ec2:{action}\" in the IAM policy of these credentials ({POLICY_HINT})"
        )),
        "AuthFailure" | "InvalidClientTokenId" | "SignatureDoesNotMatch" | "ExpiredToken" | "RequestExpired" => {
            ProviderError::Unauthorized(format!(
                "AWS rejected the credentials ({code}: {message}); check AWS_ACCESS_KEY_ID / AWS_PROFILE, or run `aws sso login` when the profile uses SSO"
            ))
        }
        "InsufficientInstanceCapacity" => ProviderError::Conflict(format!("InsufficientInstanceCapacity: {message}")),
        "DependencyViolation" | "InvalidGroup.InUse" => ProviderError::Conflict(format!("{code}: {message}")),
        "InvalidInstanceType" => ProviderError::Invalid(message.to_string()),
        "InvalidParameterValue" | "InvalidParameterCombination" | "InvalidParameter" | "MissingParameter" => {
            ProviderError::Invalid(format!("ec2:{action}: {code}: {message}"))
        }
        c if c.contains("Throttl") || c == "RequestLimitExceeded" || c.starts_with("Internal") || c == "ServiceUnavailable" => {
            api(503)
        }
        _ => api(400),
    }
}

/// VcpuLimitExceeded for `instance_type`: which quota, and how to ask for more. AWS's message
/// names no quota, so the instance family decides (G and VT families share one bucket).
pub fn quota_message(instance_type: &str, message: &str) -> String {
    let family = instance_type.split('.').next().unwrap_or_default();
    let gpu = family.starts_with('g') || family.starts_with("vt");
    let (name, code, want) = if gpu { (GPU_QUOTA, GPU_QUOTA_CODE, 4) } else { (STANDARD_QUOTA, STANDARD_QUOTA_CODE, 16) };
    format!(
        "VcpuLimitExceeded: the account's vCPU quota \"{name}\" ({code}) is too low for this instance type in this region \
         (new accounts have 0 for G instances). Request an increase in the Service Quotas console (Amazon EC2, \"{name}\"), or: \
         aws service-quotas request-service-quota-increase --service-code ec2 --quota-code {code} --desired-value {want}; \
         it takes hours to days. Meanwhile use --size cpu. AWS said: {message}"
    )
}

/// The message for a type that no availability zone had capacity for.
pub fn no_capacity(instance_type: &str, region: &str, tried: &[String]) -> ProviderError {
    ProviderError::Other(format!(
        "InsufficientInstanceCapacity: AWS has no {instance_type} free in {region} right now (tried the availability zones {}); \
         try again in a while, in another region (--location <region>), or with another --size",
        tried.join(", ")
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_unauthorized_operation_names_the_permission_and_the_policy() {
        let e = classify("RunInstances", "UnauthorizedOperation", "You are not authorized to perform this operation.").to_string();
        assert!(e.contains("\"ec2:RunInstances\""), "{e}");
        assert!(e.contains("README.md"), "{e}");
    }

    #[test]
    fn a_gpu_vcpu_limit_names_the_g_quota_and_how_to_request_it() {
        let aws = "You have requested more vCPU capacity than your current vCPU limit of 0 allows for the instance bucket that the specified instance type belongs to.";
        let s = quota_message("g4dn.xlarge", aws);
        assert!(s.contains(GPU_QUOTA) && s.contains("request-service-quota-increase") && s.contains(GPU_QUOTA_CODE), "{s}");
        assert!(quota_message("c6i.2xlarge", aws).contains(STANDARD_QUOTA_CODE));
    }

    #[test]
    fn not_found_codes_are_not_found() {
        assert!(classify("DescribeInstances", "InvalidInstanceID.NotFound", "i-1").is_not_found());
        assert!(classify("DeleteKeyPair", "InvalidKeyPair.NotFound", "k").is_not_found());
        assert!(!classify("RunInstances", "InsufficientInstanceCapacity", "none").is_not_found());
    }
}
