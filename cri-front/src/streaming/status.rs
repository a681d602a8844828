//! The `metav1.Status` JSON a remote command ends with (error channel / stream, v4 and later):
//! kubectl and client-go turn it into an exit code or an error.

use serde_json::json;

pub fn success() -> Vec<u8> {
    json!({"metadata": {}, "status": "Success"})
        .to_string()
        .into_bytes()
}

pub fn exit_code(code: i32) -> Vec<u8> {
    if code == 0 {
        return success();
    }
    json!({
        "metadata": {},
        "status": "Failure",
        "message": format!("command terminated with non-zero exit code: exit status {code}"),
        "reason": "NonZeroExitCode",
        "details": {"causes": [{"reason": "ExitCode", "message": code.to_string()}]},
    })
    .to_string()
    .into_bytes()
}

pub fn failure(message: &str) -> Vec<u8> {
    json!({
        "metadata": {},
        "status": "Failure",
        "message": message,
        "reason": "InternalError",
        "code": 500,
    })
    .to_string()
    .into_bytes()
}

#[cfg(test)]
mod tests {
    #[test]
    fn exit_codes_read_back() {
        let v: serde_json::Value = serde_json::from_slice(&super::exit_code(3)).expect("json");
        assert_eq!(v["reason"], "NonZeroExitCode");
        assert_eq!(v["details"]["causes"][0]["message"], "3");
        let ok: serde_json::Value = serde_json::from_slice(&super::exit_code(0)).expect("json");
        assert_eq!(ok["status"], "Success");
    }
}
