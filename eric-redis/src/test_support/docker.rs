//! The `docker` source of [`TestRedis`](super::TestRedis): a testcontainers
//! Redis (feature `docker`).

use testcontainers::ContainerAsync;
use testcontainers_modules::redis::Redis;

/// The image run unless `ERIC_TEST_REDIS_IMAGE` names another.
const DEFAULT_IMAGE: &str = "redis:7.2";

/// Starts a testcontainers Redis from `ERIC_TEST_REDIS_IMAGE`. This machine
/// cannot pull images, so the image is expected to be built locally.
pub(super) async fn start_container() -> Result<(String, ContainerAsync<Redis>), String> {
    use testcontainers::ImageExt;
    use testcontainers::runners::AsyncRunner;
    use testcontainers_modules::redis::REDIS_PORT;

    let image = std::env::var("ERIC_TEST_REDIS_IMAGE").unwrap_or_else(|_| DEFAULT_IMAGE.into());
    let (name, tag) = split_image(&image);
    let container = Redis::default()
        .with_name(name)
        .with_tag(tag)
        .start()
        .await
        .map_err(|e| format!("image {image}: {e}"))?;
    let host = container.get_host().await.map_err(|e| e.to_string())?;
    let port = container
        .get_host_port_ipv4(REDIS_PORT)
        .await
        .map_err(|e| e.to_string())?;
    Ok((format!("redis://{host}:{port}"), container))
}

/// `localhost:5000/redis:7.2` → (`localhost:5000/redis`, `7.2`); no tag means
/// `latest`.
fn split_image(image: &str) -> (&str, &str) {
    let name_start = image.rfind('/').map_or(0, |i| i + 1);
    match image[name_start..].rfind(':') {
        Some(i) => (&image[..name_start + i], &image[name_start + i + 1..]),
        None => (image, "latest"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn image_names_split_into_name_and_tag() {
        assert_eq!(split_image("redis:7.2"), ("redis", "7.2"));
        assert_eq!(split_image("redis"), ("redis", "latest"));
        assert_eq!(
            split_image("localhost:5000/eric/redis:test"),
            ("localhost:5000/eric/redis", "test")
        );
        assert_eq!(
            split_image("localhost:5000/redis"),
            ("localhost:5000/redis", "latest")
        );
    }
}
