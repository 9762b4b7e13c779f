// witan-android: the Android library module (AAR) of the witan SDK.
// A standalone Gradle build; open android/ in Android Studio or run ./gradlew from here.
pluginManagement {
    repositories {
        google()
        mavenCentral()
        gradlePluginPortal()
    }
}

dependencyResolutionManagement {
    repositoriesMode.set(RepositoriesMode.FAIL_ON_PROJECT_REPOS)
    repositories {
        google()
        mavenCentral()
    }
}

rootProject.name = "witan-android"
